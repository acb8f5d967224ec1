// What the supervisor sends init: the Plan plus the values only known at run time, among them
// the fds (in the supervisor) of every bind source it opened and checked.
import type { Plan } from '../plan/types.js';

/**
 * The bind sources, opened (O_PATH) and checked by the supervisor, which holds them open until
 * init has exec'd or exited. init clones each one from `/proc/<pid>/fd/<fd>` while it still
 * shares the host's mount namespace and /proc: the mount is the object that was opened,
 * whatever happened to its path since.
 */
export interface MountSources {
  /** The supervisor's pid in the host's PID namespace. */
  pid: number;
  /** By index of plan.mounts: the fd of that bind's source, or null (not a bind, or an optional source missing). */
  fds: (number | null)[];
}

export interface InitRequest {
  plan: Plan;
  uid: number;
  gid: number;
  groups: number[];
  /** Host path of the empty directory the new root is mounted on, then made `/` by pivot_root. */
  newRoot: string;
  /** Every bind's source, the build directory's `top` and the outputs' host directories included. */
  sources: MountSources;
  /** The `cgroup.procs` file of each of the build's cgroup directories: init joins them first. */
  cgroupProcs: string[];
  /** init is a fresh Node spawned by a process that carries the fork filter, and so carries it already. */
  inheritsForkFilter?: boolean;
}

/** Exit status of init when the sandbox could not be set up (the builder never ran). */
export const SETUP_FAILED = 125;
/** fd on which init receives the request, and fd on which it reports a setup failure. */
export const REQUEST_FD = 3;
export const STATUS_FD = 4;
/** A zygote's child's first status line: it has opened its pipes and waits for its request. */
export const READY_LINE = JSON.stringify({ ready: true });
/** init's last status line, written just before it execve's the builder. */
export const EXEC_LINE = JSON.stringify({ exec: true });
