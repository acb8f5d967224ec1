// What `stockade pool status` and `stockade pool check` report.
import type { Identity } from '../plan/types.js';
import { getpwuid } from '../ffi/nss.js';
import { readLockState, type Holder } from './lock.js';
import { currentIds, resolvePool } from './resolve.js';
import type { SelfIds } from './rules.js';

export interface UidStatus {
  uid: number;
  userName?: string;
  busy: boolean;
  /** Absent when busy but not yet recorded (the holder is still cleaning the UID). */
  holder?: Holder;
}

export interface PoolStatus {
  label: string;
  uids: UidStatus[];
  /** Unsafe members, which acquire refuses the whole pool for. */
  refusals: string[];
}

/** Reads the locks without taking any (a free lock is free whatever its file says). */
export function status(identity: Identity): PoolStatus {
  const pool = resolvePool(identity);
  const uids = pool.members.map((member): UidStatus => {
    const state = readLockState(identity.stateDir, member.uid);
    return { uid: member.uid, userName: member.userName, busy: state.busy, holder: state.busy ? state.holder : undefined };
  });
  return { label: pool.label, uids, refusals: pool.refusals };
}

export interface Finding {
  /** `refused`: acquire will not use the pool; `warning`: usable, but worth a look. */
  level: 'refused' | 'warning';
  message: string;
}

export function checkPool(identity: Identity, self: SelfIds = currentIds()): Finding[] {
  const pool = resolvePool(identity, self);
  const findings: Finding[] = pool.refusals.map((message) => ({ level: 'refused', message }));
  if (identity.pool.kind === 'range' && findings.length === 0) {
    // A range UID that is also an account shares that account's files and processes.
    for (const member of pool.members) {
      const account = getpwuid(member.uid);
      if (account) {
        findings.push({ level: 'warning', message: `${pool.label}: uid ${member.uid} belongs to account ${account.name}` });
      }
    }
  }
  return findings;
}
