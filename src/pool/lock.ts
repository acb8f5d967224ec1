// Per-UID lock files: `<stateDir>/<uid>`, held with flock(LOCK_EX|LOCK_NB) for the whole build.
// The open fd is the lock, so a holder that crashes releases it; libuv opens every file with
// O_CLOEXEC, so a build never inherits it. The file's content only says who holds it.
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, flock } from '../ffi/libc.js';
import { SyscallError } from '../ffi/errors.js';
import { PoolError } from './rules.js';

export { DEFAULT_POOL_STATE_DIR as DEFAULT_STATE_DIR } from '../policy/lists.js';

/** Who holds a UID, written after locking, for `stockade pool status`. */
export interface Holder {
  build: string;
  pid: number;
  /** ISO 8601 time the lease started. */
  since: string;
}

const EWOULDBLOCK = 11;

export function lockPath(stateDir: string, uid: number): string {
  return join(stateDir, String(uid));
}

/**
 * Makes `path` root-only (0700) if missing; the parents it makes are 0755, so that users can
 * still reach their siblings (the default outputs directory beside the pool's and the builds'
 * state under /var/lib/stockade).
 */
export function makePrivateDir(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * Creates the state directory (0700) if needed and refuses one that someone else could write to:
 * whoever can replace lock files can make two builds share a UID.
 */
export function ensureStateDir(stateDir: string): void {
  makePrivateDir(stateDir);
  const st = lstatSync(stateDir);
  const euid = process.geteuid?.() ?? 0;
  if (!st.isDirectory()) throw new PoolError(`pool state directory ${stateDir} is not a directory`);
  if (st.uid !== euid) throw new PoolError(`pool state directory ${stateDir} is owned by uid ${st.uid}, not ${euid}`);
  if ((st.mode & 0o022) !== 0) {
    throw new PoolError(`pool state directory ${stateDir} is writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
  }
}

function isWouldBlock(err: unknown): boolean {
  return err instanceof SyscallError && err.errno === EWOULDBLOCK;
}

/** Takes the UID's lock without waiting: the locked fd, or null when another holder has it. */
export function tryLock(stateDir: string, uid: number): number | null {
  const fd = openSync(lockPath(stateDir, uid), constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    flock(fd, LOCK_EX | LOCK_NB);
    return fd;
  } catch (err) {
    closeSync(fd);
    if (isWouldBlock(err)) return null;
    throw err;
  }
}

/**
 * Overwrites the lock file's content in place, padded with spaces to its former size (JSON
 * ignores them). Never truncated: ext4 starts writeback when a file truncated to 0 is closed
 * (auto_da_alloc), a wait on the disk twice per build.
 */
function rewrite(fd: number, text: string): void {
  writeSync(fd, text.padEnd(fstatSync(fd).size, ' '), 0, 'utf8');
}

export function writeHolder(fd: number, holder: Holder): void {
  rewrite(fd, JSON.stringify(holder) + '\n');
}

/** Blanks the record and drops the lock. */
export function unlock(fd: number): void {
  try {
    rewrite(fd, '');
  } finally {
    closeSync(fd); // the lock goes with the fd, whatever happened to the record
  }
}

export type LockState = { busy: false } | { busy: true; holder?: Holder };

/**
 * Whether the UID is locked now, and by whom. A shared probe lock never conflicts with another
 * status, only (for an instant) with an acquirer, which then simply tries the next UID.
 */
export function readLockState(stateDir: string, uid: number): LockState {
  let fd: number;
  try {
    fd = openSync(lockPath(stateDir, uid), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { busy: false };
    // Root-only on purpose: whoever can open a lock file can flock it and keep its UID from builds.
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw new PoolError(`the pool's lock directory ${stateDir} is root-only (whoever could open a lock could hold a build UID); run this as root`);
    throw err;
  }
  try {
    try {
      flock(fd, LOCK_SH | LOCK_NB);
      flock(fd, LOCK_UN);
      return { busy: false };
    } catch (err) {
      if (!isWouldBlock(err)) throw err;
    }
    return { busy: true, holder: parseHolder(readFileSync(fd, 'utf8')) };
  } finally {
    closeSync(fd);
  }
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (typeof value.build === 'string' && typeof value.pid === 'number' && typeof value.since === 'string') {
      return { build: value.build, pid: value.pid, since: value.since };
    }
  } catch {
    // A holder still cleaning its UID has written nothing yet; the lock alone says busy.
  }
  return undefined;
}
