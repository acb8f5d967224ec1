// Privileges: bounding set emptied (needs CAP_SETPCAP, so first), then the pool identity;
// the switch away from uid 0 clears the permitted and effective sets, ambient is cleared too.
import { clearAmbient, dropBoundingSet } from '../ffi/caps.js';
import { getresgid, getresuid, setgroups, setNoNewPrivs, setresgid, setresuid } from '../ffi/libc.js';
import type { Plan } from '../plan/types.js';

export function dropPrivileges(plan: Plan, uid: number, gid: number, groups: number[]): void {
  if (uid === 0 || gid === 0) throw new Error(`refusing to run a build as uid ${uid} gid ${gid}`);
  dropBoundingSet(plan.capabilities.bounding);
  setgroups(groups);
  setresgid(gid, gid, gid);
  setresuid(uid, uid, uid);
  clearAmbient();
  const u = getresuid();
  const g = getresgid();
  if ([u.real, u.effective, u.saved].some((x) => x !== uid) || [g.real, g.effective, g.saved].some((x) => x !== gid)) {
    throw new Error(`identity change did not take: uids ${JSON.stringify(u)} gids ${JSON.stringify(g)}`);
  }
  if (plan.noNewPrivs) setNoNewPrivs();
}
