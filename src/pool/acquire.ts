// Hands out one build UID exclusively across every process that shares the state directory.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Identity } from '../plan/types.js';
import { ensureStateDir, lockPath, tryLock, unlock, writeHolder } from './lock.js';
import { reapUid } from './reap.js';
import { resolveSafePool, type PoolMember } from './resolve.js';
import { PoolError, exhaustedMessage, waitingMessage } from './rules.js';

export interface AcquireOptions {
  /** The build's name, recorded for `stockade pool status`. */
  build: string;
  /** How long to wait for a free build user; 0 fails at once when all are busy. */
  timeoutMs: number;
  /** Called once when every build user is busy and acquire starts waiting. */
  onWait?: (message: string) => void;
  /** Called once per UID passed over because its leftover processes could not be killed. */
  onSkip?: (message: string) => void;
  /** How often a waiting acquire looks again (default 100 ms). */
  pollMs?: number;
  /** Ends the wait at once when aborted (a cancelled build must not take a user later). */
  signal?: AbortSignal;
}

export interface Lease extends PoolMember {
  lockPath: string;
  /**
   * Drops the lock. Reap the UID first (`await reapUid(lease.uid)`, or empty the build's cgroup);
   * the next holder scans for it again anyway. Idempotent.
   */
  release(): void;
}

export async function acquire(identity: Identity, options: AcquireOptions): Promise<Lease> {
  const pool = resolveSafePool(identity);
  ensureStateDir(identity.stateDir);
  const deadline = Date.now() + options.timeoutMs;
  const skipped = new Set<number>();
  let waiting = false;
  const cancelled = () => new PoolError(`${pool.label}: cancelled while waiting for a free build user`);
  for (;;) {
    if (options.signal?.aborted) throw cancelled();
    let busy = 0;
    for (const member of pool.members) {
      const fd = tryLock(identity.stateDir, member.uid);
      if (fd === null) {
        busy++;
        continue;
      }
      try {
        await reapUid(member.uid);
      } catch (err) {
        unlock(fd);
        if (!skipped.has(member.uid)) {
          skipped.add(member.uid);
          options.onSkip?.(`${pool.label}: uid ${member.uid} skipped: ${(err as Error).message}`);
        }
        continue;
      }
      try {
        writeHolder(fd, { build: options.build, pid: process.pid, since: new Date().toISOString() });
      } catch (err) {
        unlock(fd);
        throw err;
      }
      return lease(member, lockPath(identity.stateDir, member.uid), fd);
    }
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) {
      const size = pool.members.length;
      throw new PoolError(
        busy === size
          ? exhaustedMessage(pool.ref, size)
          : `${pool.label}: no usable build user (${busy} busy, ${size - busy} could not be cleaned)`,
      );
    }
    if (!waiting) {
      waiting = true;
      options.onWait?.(waitingMessage(pool.ref, busy));
    }
    await sleep(Math.min(options.pollMs ?? 100, remainingMs), undefined, { signal: options.signal }).catch((err: unknown) => {
      throw options.signal?.aborted ? cancelled() : err;
    });
  }
}

function lease(member: PoolMember, path: string, fd: number): Lease {
  let held = true;
  return {
    ...member,
    lockPath: path,
    release() {
      if (!held) return;
      held = false;
      unlock(fd);
    },
  };
}
