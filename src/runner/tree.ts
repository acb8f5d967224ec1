// Ownership of an action's tree. bb_worker lays the input root out as itself (root, or its own
// user); the action runs as a pool user. Before the action starts, the tree's directories (never
// its files: bb_worker may hard-link them from its cache) are given to the pool user so it can
// create its outputs; once no process of the action is left, every entry the pool user owns in
// the tree is given to the worker's user, setuid and setgid bits cleared, so bb_worker can read
// and remove all of it and the next action leasing the same UID owns nothing here. The walk
// reads names as bytes (any name the kernel allows), goes through directory fds only, never
// follows a symlink and is bounded in depth and entries (TreeTooLarge).
import { opendirSync } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import { ERRNO, OPEN_FLAGS } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { AT_SYMLINK_NOFOLLOW, fchmod, fchown, fchownat, fstat, openat, statx, type Stat } from '../ffi/fsat.js';
import { close } from '../ffi/libc.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const SET_ID_BITS = 0o6000;
/** Deeper trees are not walked past: one directory fd (and one readdir stream) is held per level. */
export const MAX_TREE_DEPTH = 256;
/** Default bound on the entries of one action's tree (`stockade runner --max-tree-entries`). */
export const DEFAULT_MAX_TREE_ENTRIES = 1_000_000;
/** How many entries the hand-back walks between turns of the event loop. */
const YIELD_EVERY = 1000;

/** Opened read-only without following a symlink, without side effects (no controlling tty, never blocking). */
const ENTRY_FLAGS = OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_NONBLOCK | OPEN_FLAGS.O_NOCTTY | OPEN_FLAGS.O_CLOEXEC;

export interface Owner {
  uid: number;
  gid: number;
}

/** The walk stopped at a bound: entries past it were not visited. */
export class TreeTooLarge extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TreeTooLarge';
  }
}

/** An entry beneath the walk's root: a directory open (O_NOFOLLOW) as `fd`, walked once the consumer moves on; anything else by name in `parentFd`. */
type Entry = { kind: 'directory'; fd: number; st: Stat } | { kind: 'other'; parentFd: number; name: Buffer; st: Stat };

/** Opens `name` in `parentFd` and checks it is still the entry statx saw (no symlink, no swap). */
function openEntry(parentFd: number, name: Buffer, st: Stat): number | undefined {
  const isDir = (st.mode & S_IFMT) === S_IFDIR;
  let fd: number;
  try {
    fd = openat(parentFd, name, ENTRY_FLAGS | (isDir ? OPEN_FLAGS.O_DIRECTORY : 0));
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ERRNO.ENOENT) return undefined;
    throw err;
  }
  const now = fstat(fd);
  if (now.ino !== st.ino || now.dev !== st.dev) {
    close(fd);
    throw new Error(`entry ${JSON.stringify(name.toString('utf8'))} changed while the runner walked the action's tree`);
  }
  return fd;
}

/** Every entry beneath the directory `rootFd` (not the root itself), at most `maxEntries`; fds stay open only while the consumer holds the entry. */
function* walk(rootFd: number, maxEntries: number): Generator<Entry, void, undefined> {
  let entries = 0;
  function* descend(dirFd: number, depth: number): Generator<Entry, void, undefined> {
    if (depth > MAX_TREE_DEPTH) throw new TreeTooLarge(`action tree deeper than ${MAX_TREE_DEPTH} levels`);
    // /proc/self/fd/N is the directory itself, whatever its path has become; read as a stream, so
    // a huge directory is never held whole. Names as bytes: Node's types omit opendir's 'buffer'.
    const dir = opendirSync(`/proc/self/fd/${dirFd}`, { encoding: 'buffer' as BufferEncoding });
    try {
      for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
        if (++entries > maxEntries) throw new TreeTooLarge(`action tree holds more than ${maxEntries} entries`);
        const name = entry.name as unknown as Buffer;
        let st: Stat;
        try {
          st = statx(dirFd, name, AT_SYMLINK_NOFOLLOW);
        } catch (err) {
          if (err instanceof SyscallError && err.errno === ERRNO.ENOENT) continue;
          throw err;
        }
        if ((st.mode & S_IFMT) !== S_IFDIR) {
          yield { kind: 'other', parentFd: dirFd, name, st };
          continue;
        }
        const child = openEntry(dirFd, name, st);
        if (child === undefined) continue;
        try {
          yield { kind: 'directory', fd: child, st };
          yield* descend(child, depth + 1);
        } finally {
          close(child);
        }
      }
    } finally {
      dir.closeSync();
    }
  }
  yield* descend(rootFd, 1);
}

/** Gives the directory `dirFd` and every directory beneath it to `to` (files keep their owner). */
export function lendDirectories(dirFd: number, to: Owner, maxEntries: number): void {
  fchown(dirFd, to.uid, to.gid);
  for (const entry of walk(dirFd, maxEntries)) if (entry.kind === 'directory') fchown(entry.fd, to.uid, to.gid);
}

/** Gives an open entry to `to`, its setuid and setgid bits cleared (chown clears neither on a directory, nor setgid on a file without group exec). */
function giveOpen(fd: number, st: Stat, to: Owner): void {
  fchown(fd, to.uid, to.gid);
  if (st.mode & SET_ID_BITS) fchmod(fd, st.mode & 0o7777 & ~SET_ID_BITS);
}

/**
 * Gives every entry `from` owns in the tree of `dirFd` (the root included) to `to`, setuid and
 * setgid bits cleared; returns how many. Lets the event loop run every YIELD_EVERY entries, so
 * the runner keeps serving its other calls while it walks a large tree (nothing of the action
 * is left to change it). Throws TreeTooLarge past the bounds, having handed back what it reached.
 */
export async function handBack(dirFd: number, from: number, to: Owner, maxEntries: number): Promise<number> {
  let count = 0;
  const root = fstat(dirFd);
  if (root.uid === from) {
    giveOpen(dirFd, root, to);
    count++;
  }
  let seen = 0;
  for (const entry of walk(dirFd, maxEntries)) {
    if (++seen % YIELD_EVERY === 0) await setImmediate();
    if (entry.st.uid !== from) continue;
    if (entry.kind === 'directory') {
      giveOpen(entry.fd, entry.st, to);
    } else if ((entry.st.mode & S_IFMT) === S_IFREG && entry.st.mode & SET_ID_BITS) {
      const fd = openEntry(entry.parentFd, entry.name, entry.st);
      if (fd === undefined) continue;
      try {
        giveOpen(fd, entry.st, to);
      } finally {
        close(fd);
      }
    } else {
      // Never what a symlink points to; a symlink's, FIFO's or socket's mode grants nothing.
      fchownat(entry.parentFd, entry.name, to.uid, to.gid, AT_SYMLINK_NOFOLLOW);
    }
    count++;
  }
  return count;
}
