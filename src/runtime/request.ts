// What the supervisor sends init: the Plan plus the values only known at run time.
import type { Plan } from '../plan/types.js';

export interface InitRequest {
  plan: Plan;
  uid: number;
  gid: number;
  groups: number[];
  /** Host path of the build directory's `top`, bound at plan.build.dir. */
  buildTop: string;
  /** Host path, in the private build directory, bound at each output's path (Plan source `{output_host}`). */
  outputHosts: Record<string, string>;
  /** Host path of the empty directory the new root is mounted on. */
  chroot: string;
}

/** Exit status of init when the sandbox could not be set up (the builder never ran). */
export const SETUP_FAILED = 125;
/** fd on which init receives the request, and fd on which it reports a setup failure. */
export const REQUEST_FD = 3;
export const STATUS_FD = 4;
/** init's first status line: Node has started and init waits for its request. */
export const READY_LINE = JSON.stringify({ ready: true });

/** `{uid}`/`{gid}` in generated files are the identity taken from the pool. */
export function substituteIds(content: string, uid: number, gid: number): string {
  return content.replace(/\{uid\}/g, String(uid)).replace(/\{gid\}/g, String(gid));
}
