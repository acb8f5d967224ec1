// The Plan: every decision a policy and a build spec resolve to, made explicit.
// Plain JSON-serialisable data; the runtime applies only this.

/** Where a value came from in a policy file (for audit findings and explain). */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export type PoolRef =
  | { kind: 'group'; group: string }
  | { kind: 'range'; first: number; count: number; gid: number };

export interface Identity {
  pool: PoolRef;
  /** Where per-UID lock files live. */
  stateDir: string;
  /** The passwd entry the build user gets inside the sandbox (guix: nixbld). */
  passwd: { name: string; gecos: string; home: string; shell: string };
  /** The group entry name inside the sandbox (guix: nixbld). */
  groupName: string;
  /** Supplementary groups: `pool` = the build user's own list via getgrouplist (guix), or none. */
  supplementaryGroups: 'pool' | 'none';
}

/**
 * Which setting asked for an entry of the Plan: named when setting the entry up fails on the
 * host (a missing `filesystem.paths` source, device or input).
 */
export interface FieldOrigin {
  /** JSON pointer of the field: in the policy (/filesystem/paths/1), or in the build spec for inputs (/inputs/0). */
  pointer: string;
  /** Where the field was written, or what gave it without a position (`command line`, `default`). */
  at: SourcePos | string;
}

/** What a bind mounts; the supervisor opens each once, as its kind says (src/runtime/sources.ts). */
export type BindSource =
  /** A host path the admin chose (a filesystem.paths source, a device, an /etc host file): opened as written. */
  | { kind: 'host'; path: string }
  /** An input of the build spec: opened beneath the filesystem.inputs.under root it lies under, no symlink on the way. */
  | { kind: 'input'; path: string }
  /** The build directory's `top`, made for each build. */
  | { kind: 'build-dir' }
  /** The build's own directory in which it makes the outputs of outputDirs(build.outputs)[index]. */
  | { kind: 'outputs-dir'; index: number }
  /** A directory the build's caller opened beneath a root of its own (RunOptions.trees[name]): a remote action's input root or temporary directory (stockade runner). */
  | { kind: 'tree'; name: string };

interface MountCommon {
  /** Absolute path inside the sandbox. */
  target: string;
  readonly: boolean;
  nosuid: boolean;
  nodev: boolean;
  noexec: boolean;
  /** Why the mount is there: root, path, input, outputs-dir, tmp, build-dir, proc, dev, device, etc. */
  role: string;
}

export interface BindMount extends MountCommon {
  type: 'bind';
  source: BindSource;
  /** A bind whose source may be missing (the mount is then skipped). */
  optional?: boolean;
  /** Whether the source is a directory or a file (binds create the target accordingly). */
  kind?: 'dir' | 'file';
  /** The setting that asked for it, when one did. */
  origin?: FieldOrigin;
  options?: never;
}

/** A fresh filesystem of its type (the type is also the mount's source name). */
export interface FsMount extends MountCommon {
  type: 'tmpfs' | 'proc' | 'devpts' | 'mqueue';
  /** fs options (tmpfs size/mode, devpts newinstance…). */
  options?: string;
  optional?: never;
  kind?: never;
  origin?: never;
}

export type Mount = BindMount | FsMount;

export interface DeviceNode {
  /** Name under /dev. */
  name: string;
  /** How it appears: a bind of the host node, a symlink, or a directory/mount set up elsewhere. */
  kind: 'bind' | 'symlink';
  /** For binds: the host path; for symlinks: the link target. */
  source: string;
  optional: boolean;
}

/** Text of a generated file: literal pieces, and the build user's ids, known once it is taken from the pool. */
export type EtcText = (string | { id: 'uid' | 'gid' })[];

export interface EtcFile {
  /** Absolute path inside the sandbox, under /etc. */
  path: string;
  /** Exact content. */
  content?: EtcText;
  /** A host file bound read-only instead of generated content. */
  hostSource?: string;
  optional?: boolean;
  mode: number;
}

export type SeccompAction =
  | { kind: 'allow' }
  | { kind: 'errno'; errno: number; name: string }
  | { kind: 'kill_process' }
  | { kind: 'kill_thread' }
  | { kind: 'trap' }
  | { kind: 'log' };

export interface SeccompArgCondition {
  index: number;
  op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'masked_eq';
  value: number;
  /** For masked_eq: (arg & mask) == value. */
  mask?: number;
}

export interface SeccompRule {
  syscall: string;
  action: SeccompAction;
  args: SeccompArgCondition[];
  /** Skip (and report) instead of failing when this libseccomp does not know the name. */
  optional: boolean;
  /** The rule comes from the seccomp profile (SeccompPlan.profile), not the policy's own rules. */
  fromProfile?: true;
}

export interface SeccompPlan {
  defaultAction: SeccompAction;
  /** libseccomp architecture names; `native` resolved (x86_64 here). */
  architectures: string[];
  rules: SeccompRule[];
  /** The OCI/Docker profile the filter is based on, and which side decided the default and the ABIs. */
  profile?: { path: string; defaultFrom: 'profile' | 'policy'; architecturesFrom: 'profile' | 'policy' };
}

export type LandlockAccess = 'read' | 'write' | 'execute';

export interface LandlockPlan {
  /** What to do when the kernel's Landlock ABI lacks something the plan needs. */
  compat: 'require' | 'best-effort';
  paths: { path: string; access: LandlockAccess[] }[];
  /** When present, TCP bind/connect are handled: only the listed ports are allowed. */
  tcp?: { bind: number[]; connect: number[] };
  scopes: ('abstract-unix-socket' | 'signal')[];
}

export interface Rlimit {
  soft: number | 'unlimited';
  hard: number | 'unlimited';
}

export interface Limits {
  /** By resource name without RLIMIT_: core, nofile, nproc, as, cpu, fsize, stack, data, memlock… */
  rlimits: Record<string, Rlimit>;
  cgroup: { pids?: number; memoryBytes?: number; cpu?: { quotaUs: number; periodUs: number } };
  /** Most inputs a spec may list (the plan refuses more). */
  maxInputs: number;
  /** Most bytes of all outputs together, checked at hand-over; null: no limit. */
  outputBytes: number | null;
  /** Size of the tmpfs holding the writable build dir; null: the build dir is on the host's disk, unbounded. */
  buildDirBytes: number | null;
}

export interface NetworkPlan {
  mode: 'none' | 'slirp' | 'host';
  /** slirp only: whether the build may reach the host's loopback through 10.0.2.2. */
  allowHostLoopback: boolean;
  /**
   * Whether socket(AF_VSOCK) works (a network namespace does not isolate vsock). When false the
   * runtime loads a seccomp filter of its own refusing it, whatever the policy's seccomp section.
   */
  vsock: boolean;
}

export interface BuildPlan {
  name: string;
  builder: string;
  args: string[];
  /** The build directory inside the sandbox (also the cwd unless `cwd` says otherwise). */
  dir: string;
  /** The builder's working directory inside the sandbox, when not the build directory (a remote action's, beneath its input root). */
  cwd?: string;
  /** Host directory the build dir is made under (guix: $TMPDIR). */
  hostParent: string;
  /** The host build directory is hostParent/hostDirPrefix followed by the first number N (0, 1…) not taken. */
  hostDirPrefix: string;
  inputs: string[];
  outputs: string[];
  /** The policy's allowed prefixes; inputs and outputs must also resolve (symlinks followed) under them. */
  inputsUnder: string[];
  outputsUnder: string[];
  cores: number;
}

/** How outputs are handed back: fixed as guix-daemon does it, only the owner is the policy's. */
export interface OutputsPlan {
  owner: { uid: number; gid: number };
  /** Modes of regular files, of files the builder left executable (owner x bit), of directories. */
  fileMode: number;
  executableMode: number;
  directoryMode: number;
  /** atime and mtime of every entry, in seconds since the epoch. */
  mtime: number;
}

export interface Plan {
  version: 1;
  policy: { name: string; description: string; file: string; fixedOutput: boolean; chain: string[] };
  build: BuildPlan;
  identity: Identity;
  namespaces: ('pid' | 'mount' | 'uts' | 'ipc' | 'net' | 'cgroup')[];
  /** The new root and everything mounted in it, in order. */
  root: { size: string; mode: number; readonly: boolean };
  mounts: Mount[];
  devices: DeviceNode[];
  etc: EtcFile[];
  network: NetworkPlan;
  hostname: string;
  domainname: string;
  /** The complete environment of the builder, in order. */
  environment: Record<string, string>;
  capabilities: { bounding: string[]; ambient: string[] };
  noNewPrivs: boolean;
  seccomp: SeccompPlan | null;
  landlock: LandlockPlan | null;
  limits: Limits;
  timeouts: { totalSeconds: number; maxSilentSeconds: number };
  outputs: OutputsPlan;
  personality: string[];
  oomScoreAdj: number;
}
