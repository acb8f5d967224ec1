// The safety rules for build users, as pure functions of account facts so they are testable
// without root or real accounts. A build user must not be able to do more than a stranger could.
import type { PoolRef } from '../plan/types.js';

/**
 * Groups whose members can become root or read secrets: sudo/wheel/admin (sudo), adm and
 * systemd-journal (all logs), docker/lxd/incus-admin/libvirt (root through the daemon), disk and
 * kmem (raw devices, kernel memory), shadow (password hashes), staff (writes /usr/local on Debian),
 * root (gid 0). kvm is deliberately allowed: guix gives it to its build users.
 */
export const PRIVILEGED_GROUPS: readonly string[] = [
  'root', 'sudo', 'wheel', 'admin', 'adm', 'systemd-journal', 'staff',
  'docker', 'lxd', 'incus-admin', 'libvirt', 'disk', 'kmem', 'shadow',
];

/** Shells that refuse a login. Any absolute path whose last component is `nologin` or `false` also counts. */
export const NO_LOGIN_SHELLS: readonly string[] = ['/noshell', '/usr/sbin/nologin', '/sbin/nologin', '/bin/false', '/usr/bin/false'];

/** The largest usable id: (uid_t)-1 means "unchanged" to setresuid and friends. */
export const MAX_ID = 2 ** 32 - 2;

/** The ids Stockade itself runs with (root for the daemon); a build must never share them. */
export interface SelfIds {
  uid: number;
  gid: number;
}

/** What the rules need to know about one group-pool member. */
export interface MemberFacts {
  name: string;
  uid: number;
  /** The primary gid from passwd. */
  gid: number;
  shell: string;
  /** Every group the account is in (getgrouplist), with its name when it has one. */
  groups: { gid: number; name?: string }[];
}

export function isNoLoginShell(shell: string): boolean {
  if (NO_LOGIN_SHELLS.includes(shell)) return true;
  const last = shell.slice(shell.lastIndexOf('/') + 1);
  return shell.startsWith('/') && (last === 'nologin' || last === 'false');
}

/** Why `member` must not be a build user; empty when it is safe. */
export function memberRefusals(member: MemberFacts, self: SelfIds): string[] {
  const reasons: string[] = [];
  if (member.uid === 0) reasons.push('uid 0');
  if (member.gid === 0) reasons.push('primary gid 0');
  if (member.uid !== 0 && member.uid === self.uid) reasons.push("Stockade's own uid");
  if (member.gid !== 0 && member.gid === self.gid) reasons.push("Stockade's own gid");
  if (member.uid > MAX_ID) reasons.push(`uid ${member.uid} out of range`);
  if (!isNoLoginShell(member.shell)) reasons.push(`login shell ${member.shell || '(empty, i.e. /bin/sh)'}`);
  for (const group of member.groups) {
    if (group.gid === 0 && member.gid !== 0) reasons.push(`member of group ${group.name ?? 'root'} (gid 0)`);
    else if (group.name !== undefined && group.gid !== 0 && PRIVILEGED_GROUPS.includes(group.name)) {
      reasons.push(`member of privileged group ${group.name}`);
    }
  }
  return reasons;
}

/** Why a numeric range must not be a pool; empty when it is safe. */
export function rangeRefusals(range: { first: number; count: number; gid: number }, self: SelfIds): string[] {
  const reasons: string[] = [];
  const { first, count, gid } = range;
  if (!Number.isInteger(first) || !Number.isInteger(count) || !Number.isInteger(gid)) {
    return ['first, count and gid must be integers'];
  }
  if (count < 1) reasons.push(`count ${count} is not positive`);
  if (first < 0) reasons.push(`first uid ${first} is negative`);
  if (first <= 0 && first + count > 0) reasons.push('range includes uid 0');
  if (first + count - 1 > MAX_ID) reasons.push(`range ends past ${MAX_ID}`);
  if (gid === 0) reasons.push('gid 0');
  if (gid < 0 || gid > MAX_ID) reasons.push(`gid ${gid} out of range`);
  if (self.uid !== 0 && self.uid >= first && self.uid < first + count) reasons.push("range includes Stockade's own uid");
  if (self.gid !== 0 && gid === self.gid) reasons.push("Stockade's own gid");
  return reasons;
}

/** How messages name a pool: `pool guixbuild` or `pool 30001-30032`. */
export function poolLabel(ref: PoolRef): string {
  return ref.kind === 'group' ? `pool ${ref.group}` : `pool ${ref.first}-${ref.first + ref.count - 1}`;
}

/** `pool guixbuild: guixbuilder03 (uid 998) refused: login shell /bin/bash` */
export function memberRefusalMessage(ref: PoolRef, member: { name: string; uid: number }, reason: string): string {
  return `${poolLabel(ref)}: ${member.name} (uid ${member.uid}) refused: ${reason}`;
}

/** `pool 0-9 refused: range includes uid 0` */
export function rangeRefusalMessage(ref: PoolRef, reason: string): string {
  return `${poolLabel(ref)} refused: ${reason}`;
}

export function exhaustedMessage(ref: PoolRef, size: number): string {
  return `${poolLabel(ref)}: all ${size} build users busy`;
}

export function waitingMessage(ref: PoolRef, busy: number): string {
  return `waiting for a free build user (${poolLabel(ref)}: ${busy} busy)`;
}

/** A pool that cannot be used as configured, or has no free build user; the message is for the admin. */
export class PoolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoolError';
  }
}
