// Ownership of an action's tree. bb_worker lays the input root out as itself (root, or its own
// user); the action runs as a pool user. Before the action starts, the tree's directories (never
// its files: bb_worker may hard-link them from its cache) are given to the pool user so it can
// create its outputs; once no process of the action is left, every entry the pool user owns in
// the tree is given to the worker's user, so bb_worker can read and remove all of it and the
// next action leasing the same UID owns nothing here. The walk goes through directory fds only,
// never follows a symlink and is bounded in depth and entries.
import { readdirSync } from 'node:fs';
import { ERRNO } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { AT_SYMLINK_NOFOLLOW, fchown, fchownat, fstat, openDirAt, statx } from '../ffi/fsat.js';
import { close } from '../ffi/libc.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
/** Deeper trees are refused rather than walked: one fd is held per level. */
export const MAX_TREE_DEPTH = 256;
/** More entries than this in one action's tree and the walk stops with an error. */
export const MAX_TREE_ENTRIES = 1_000_000;

export interface Owner {
  uid: number;
  gid: number;
}

/** Visits every entry beneath the directory `rootFd` (not the root itself); `visit` is told each entry's parent fd, name and type. */
function walk(rootFd: number, visit: (dirFd: number, name: string, isDir: boolean, uid: number) => void): void {
  let entries = 0;
  const descend = (dirFd: number, depth: number) => {
    if (depth > MAX_TREE_DEPTH) throw new Error(`action tree deeper than ${MAX_TREE_DEPTH} levels`);
    for (const name of readdirSync(`/proc/self/fd/${dirFd}`)) {
      if (++entries > MAX_TREE_ENTRIES) throw new Error(`action tree holds more than ${MAX_TREE_ENTRIES} entries`);
      let st;
      try {
        st = statx(dirFd, name, AT_SYMLINK_NOFOLLOW);
      } catch (err) {
        if (err instanceof SyscallError && err.errno === ERRNO.ENOENT) continue;
        throw err;
      }
      const isDir = (st.mode & S_IFMT) === S_IFDIR;
      visit(dirFd, name, isDir, st.uid);
      if (!isDir) continue;
      const child = openDirAt(dirFd, name);
      try {
        descend(child, depth + 1);
      } finally {
        close(child);
      }
    }
  };
  descend(rootFd, 1);
}

/** Gives the directory `dirFd` and every directory beneath it to `to` (files keep their owner). */
export function lendDirectories(dirFd: number, to: Owner): void {
  fchown(dirFd, to.uid, to.gid);
  walk(dirFd, (parent, name, isDir) => {
    if (isDir) fchownat(parent, name, to.uid, to.gid, AT_SYMLINK_NOFOLLOW);
  });
}

/** Gives every entry `from` owns in the tree of `dirFd` (the root included) to `to`; returns how many. */
export function handBack(dirFd: number, from: number, to: Owner): number {
  let count = 0;
  if (fstat(dirFd).uid === from) {
    fchown(dirFd, to.uid, to.gid);
    count++;
  }
  walk(dirFd, (parent, name, _isDir, uid) => {
    if (uid !== from) return;
    // The kernel clears setuid and setgid bits on a change of owner.
    fchownat(parent, name, to.uid, to.gid, AT_SYMLINK_NOFOLLOW);
    count++;
  });
  return count;
}
