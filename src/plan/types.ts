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

export interface Mount {
  /** Host path for binds; the fs type name otherwise. */
  source: string;
  /** Absolute path inside the sandbox. */
  target: string;
  type: 'bind' | 'tmpfs' | 'proc' | 'devpts' | 'mqueue';
  readonly: boolean;
  nosuid: boolean;
  nodev: boolean;
  noexec: boolean;
  /** fs options (tmpfs size/mode, devpts newinstance…). */
  options?: string;
  /** A bind whose source may be missing (the mount is then skipped). */
  optional?: boolean;
  /** Whether the source is a directory or a file (binds create the target accordingly). */
  kind?: 'dir' | 'file';
  /** Why the mount is there: root, path, input, output, tmp, build-dir, proc, dev, etc. */
  role: string;
}

export interface DeviceNode {
  /** Name under /dev. */
  name: string;
  /** How it appears: a bind of the host node, a symlink, or a directory/mount set up elsewhere. */
  kind: 'bind' | 'symlink';
  /** For binds: the host path; for symlinks: the link target. */
  source: string;
  optional: boolean;
}

export interface EtcFile {
  /** Absolute path inside the sandbox, under /etc. */
  path: string;
  /** Exact content; `{uid}`, `{gid}` are the identity taken from the pool at run time. */
  content?: string;
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
  /** Host directory name template; `{n}` counts up when taken. */
  hostName: string;
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
