// Turns an Identity's PoolRef into the list of build users, with the safety rules applied.
import type { Identity, PoolRef } from '../plan/types.js';
import { getgrgid, getgrnam, getgrouplist, getpwnam } from '../ffi/nss.js';
import {
  PoolError, memberRefusalMessage, memberRefusals, poolLabel, rangeRefusalMessage, rangeRefusals, type SelfIds,
} from './rules.js';

export interface PoolMember {
  uid: number;
  /** The gid builds run with: the pool group's (as guix-daemon does), or the range's. */
  gid: number;
  /** Supplementary groups (getgrouplist) when the identity asks for them; empty otherwise. */
  groups: number[];
  /** The account name; absent for range pools, whose UIDs need no account. */
  userName?: string;
}

export interface Pool {
  ref: PoolRef;
  /** `pool guixbuild` or `pool 30001-30032`, as every message names it. */
  label: string;
  /** The safe members, in pool order (gr_mem order, or ascending UIDs). */
  members: PoolMember[];
  /** One message per unsafe member or range problem; a pool with any is not used. */
  refusals: string[];
}

export function currentIds(): SelfIds {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

export function resolvePool(identity: Identity, self: SelfIds = currentIds()): Pool {
  const ref = identity.pool;
  return ref.kind === 'group' ? resolveGroup(ref, identity, self) : resolveRange(ref, self);
}

/** Like resolvePool, but refuses (throws) a pool with any unsafe member: security code fails closed. */
export function resolveSafePool(identity: Identity, self: SelfIds = currentIds()): Pool {
  const pool = resolvePool(identity, self);
  if (pool.refusals.length > 0) throw new PoolError(pool.refusals.join('\n'));
  return pool;
}

function resolveRange(ref: Extract<PoolRef, { kind: 'range' }>, self: SelfIds): Pool {
  const refusals = rangeRefusals(ref, self).map((reason) => rangeRefusalMessage(ref, reason));
  const members: PoolMember[] = [];
  if (refusals.length === 0) {
    for (let uid = ref.first; uid < ref.first + ref.count; uid++) members.push({ uid, gid: ref.gid, groups: [] });
  }
  return { ref, label: poolLabel(ref), members, refusals };
}

function resolveGroup(ref: Extract<PoolRef, { kind: 'group' }>, identity: Identity, self: SelfIds): Pool {
  const label = poolLabel(ref);
  const group = getgrnam(ref.group);
  if (!group) throw new PoolError(`${label}: no group ${ref.group}`);
  if (group.members.length === 0) throw new PoolError(`${label}: group ${ref.group} has no members`);
  const members: PoolMember[] = [];
  const refusals: string[] = [];
  if (group.gid === 0) refusals.push(`${label} refused: group gid 0`);
  const seen = new Set<number>();
  for (const name of group.members) {
    const account = getpwnam(name);
    if (!account) {
      refusals.push(`${label}: ${name} refused: no such user`);
      continue;
    }
    const groupIds = getgrouplist(account.name, account.gid);
    const groups = groupIds.map((gid) => ({ gid, name: getgrgid(gid)?.name }));
    const reasons = memberRefusals({ name: account.name, uid: account.uid, gid: account.gid, shell: account.shell, groups }, self);
    if (reasons.length > 0) {
      for (const reason of reasons) refusals.push(memberRefusalMessage(ref, account, reason));
      continue;
    }
    // Two names for one UID would be one build user counted twice; the lock is per UID anyway.
    if (seen.has(account.uid)) continue;
    seen.add(account.uid);
    members.push({
      uid: account.uid,
      gid: group.gid,
      groups: identity.supplementaryGroups === 'pool' ? groupIds : [],
      userName: account.name,
    });
  }
  return { ref, label, members, refusals };
}
