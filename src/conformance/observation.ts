// What the probe is asked to look at, and what it reports: facts only, no judgement.
// Shared by the probe (inside the sandbox) and the checks (on the host).

export interface SyscallProbe {
  name: string;
  arch: 'x86_64' | 'x32';
  nr: number;
}

export interface ProbeConfig {
  /** Paths whose existence is reported (lstat). */
  exists: string[];
  /** Directories where the probe tries to create a file. */
  writable: string[];
  /** Outputs the probe makes, as a builder does: each a directory holding a file. */
  makeOutputs: string[];
  /** Files the probe tries to open for writing (Landlock: write access outside created files). */
  writeOpen: string[];
  syscalls: SyscallProbe[];
  /** A host abstract unix socket name (without the leading NUL) the probe tries to reach. */
  hostAbstractSocket: string;
  /** A host pid the probe tries to signal with signal 0. */
  hostPid: number;
}

/**
 * The probe's other job: one end of a unix socket between two builds. The listener holds an
 * abstract socket for `holdMs` (and checks it can reach it itself); the dialer tries to reach
 * it until `holdMs` has passed.
 */
export interface PeerConfig {
  role: 'listen' | 'dial';
  name: string;
  holdMs: number;
}

export interface PeerReport {
  /** listen: whether the listener reached its own socket (the mechanism works). */
  self?: CallResult;
  /** listen: connections accepted from elsewhere. */
  accepted?: number;
  /** dial: the last answer of its attempts. */
  dial?: CallResult;
}

export const PEER_MARKER = 'STOCKADE-PROBE-PEER ';

/**
 * The probe's third job: look for keys by description in the session, user and user-session
 * keyrings (keyctl KEYCTL_SEARCH), then plant one in the user and user-session keyrings.
 */
export interface KeysConfig {
  find: string[];
  plant?: string;
}

export interface KeysReport {
  uid: number;
  /** Per description: the search's answer in each keyring ('ok' = found). */
  found: Record<string, { session: CallResult; user: CallResult; userSession: CallResult }>;
  /** add_key's answer for the user and user-session keyrings. */
  planted?: { user: CallResult; userSession: CallResult };
}

export const KEYS_MARKER = 'STOCKADE-PROBE-KEYS ';

/** An errno name such as 'EPERM', or 'ok' when the call succeeded. */
export type CallResult = string;

export interface DeviceEntry {
  name: string;
  type: 'char' | 'block' | 'dir' | 'symlink' | 'file' | 'other';
  /** Major:minor for device nodes. */
  rdev?: string;
  /** The link target for symlinks. */
  target?: string;
}

export interface MountEntry {
  target: string;
  /** The path inside its file system that is mounted ('/' unless a bind of a subtree or file). */
  root: string;
  /** The file system's device, major:minor. */
  device: string;
  fstype: string;
  source: string;
  options: string[];
  superOptions: string[];
}

export interface Observation {
  /**
   * Seen by the wrapper shell the probe is exec'd from, before node starts. `fds` is its listing
   * of its own fds, printed before the observation (a redirection would add one).
   */
  start: {
    fds: number[];
    stdin: string;
    environ: Record<string, string>;
    limits: Record<string, { soft: string; hard: string }>;
    /** SigIgn, SigBlk, SigCgt of the wrapper's first command, as the builder handed them on. */
    signals: { SigIgn: string; SigBlk: string; SigCgt: string };
    /** Each interval timer of the builder's process, value plus interval in µs (0: disarmed, -1: getitimer failed). */
    timers: { real: number; virtual: number; prof: number };
  };
  pid: number;
  procPids: number[];
  cwd: string;
  uid: number[];
  gid: number[];
  groups: number[];
  status: Record<string, string>;
  mounts: MountEntry[];
  devices: DeviceEntry[];
  /** Every file under /etc: path → content (utf-8) and mode. */
  etc: Record<string, { content: string; mode: number }>;
  exists: Record<string, boolean>;
  writable: Record<string, CallResult>;
  /** Each output of makeOutputs: whether the probe could make it. */
  outputsMade: Record<string, CallResult>;
  writeOpen: Record<string, CallResult>;
  /** `chmod(file, 06755)` on a file of the build's own, and the mode it has afterwards. */
  setuidChmod: { result: CallResult; mode: number };
  /** Raw fchmodat2 (452) with S_ISUID on the same file. */
  setuidFchmodat2: CallResult;
  /**
   * Each way of making a file with S_ISUID|S_ISGID (06755) in the build directory: the call's
   * answer and the mode the file got (0 when none was made).
   */
  setidCreate: Record<string, { result: CallResult; mode: number }>;
  /** socket(AF_VSOCK, SOCK_STREAM, 0). */
  vsock: CallResult;
  /** chmod of the build directory's parent (guix: must fail). */
  chmodParent: CallResult;
  mknod: CallResult;
  syscalls: Record<string, CallResult>;
  tty: { openDevTty: CallResult; tiocsti: CallResult; sid: number };
  killHost: CallResult;
  abstractSocket: CallResult;
  loopbackConnect: CallResult;
  interfaces: { name: string; up: boolean; addresses: string[] }[];
  routes: string[];
  hostname: string;
  domainname: string;
  namespaces: Record<string, string>;
  tmpSizeBytes: number;
}

export const PROBE_MARKER = 'STOCKADE-PROBE-OBSERVATION ';
