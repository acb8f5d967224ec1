// The *at file calls, so trees are walked and removed through directory fds, never by
// absolute path: a symlink swapped in by a build cannot redirect them (CVE-2025-46415).
import { readdirSync } from 'node:fs';
import { check, lastErrno } from './lib.js';
import { close, libcFn } from './libc.js';
import { quote, renderFlags, renderMode } from './errors.js';
import { AT_FDCWD, ERRNO, OPEN_FLAGS } from './arch.js';

export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_NOFOLLOW = 0x100;

function dirLabel(dirfd: number): string {
  return dirfd === AT_FDCWD ? 'AT_FDCWD' : String(dirfd);
}

export function openat(dirfd: number, name: string, flags: number, mode = 0): number {
  const fd = libcFn('int openat(int dirfd, const char *path, int flags, ...)')(dirfd, name, flags, 'uint32_t', mode) as number;
  return check(fd, 'openat', () => `${dirLabel(dirfd)}, ${quote(name)}, ${flags & 3 ? '' : 'O_RDONLY|'}${renderFlags(flags, OPEN_FLAGS)}`);
}

export function unlinkat(dirfd: number, name: string, flags: number): void {
  check(libcFn('int unlinkat(int dirfd, const char *path, int flags)')(dirfd, name, flags), 'unlinkat', () =>
    `${dirLabel(dirfd)}, ${quote(name)}, ${flags & AT_REMOVEDIR ? 'AT_REMOVEDIR' : '0'}`);
}

export function mkdirat(dirfd: number, name: string, mode: number): void {
  check(libcFn('int mkdirat(int dirfd, const char *path, uint32_t mode)')(dirfd, name, mode), 'mkdirat', () =>
    `${dirLabel(dirfd)}, ${quote(name)}, ${renderMode(mode)}`);
}

export function fchown(fd: number, uid: number, gid: number): void {
  check(libcFn('int fchown(int fd, uint32_t uid, uint32_t gid)')(fd, uid, gid), 'fchown', () => `${fd}, ${uid}, ${gid}`);
}

export function fchmod(fd: number, mode: number): void {
  check(libcFn('int fchmod(int fd, uint32_t mode)')(fd, mode), 'fchmod', () => `${fd}, ${renderMode(mode)}`);
}

const DIR_FLAGS = OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_CLOEXEC;

/** Opens a directory without following a symlink in its last component. */
export function openDirAt(dirfd: number, name: string): number {
  return openat(dirfd, name, DIR_FLAGS);
}

/**
 * Removes `name` under `dirfd` and everything below it through directory fds. A symlink is
 * removed as a link, never followed. Missing entries are fine (something else removed them).
 */
export function removeTreeAt(dirfd: number, name: string): void {
  const fd = libcFn('int openat(int dirfd, const char *path, int flags, ...)')(dirfd, name, DIR_FLAGS, 'uint32_t', 0) as number;
  if (fd < 0) {
    const errno = lastErrno();
    if (errno === ERRNO.ENOENT) return;
    if (errno !== ERRNO.ENOTDIR && errno !== ERRNO.ELOOP) check(fd, 'openat', () => `${dirLabel(dirfd)}, ${quote(name)}, O_RDONLY|${renderFlags(DIR_FLAGS, OPEN_FLAGS)}`);
    unlinkIfPresent(dirfd, name, 0);
    return;
  }
  try {
    // /proc/self/fd/N names the opened directory itself, whatever its path has become since.
    for (const entry of readdirSync(`/proc/self/fd/${fd}`)) removeTreeAt(fd, entry);
  } finally {
    close(fd);
  }
  unlinkIfPresent(dirfd, name, AT_REMOVEDIR);
}

function unlinkIfPresent(dirfd: number, name: string, flags: number): void {
  const result = libcFn('int unlinkat(int dirfd, const char *path, int flags)')(dirfd, name, flags) as number;
  if (result < 0 && lastErrno() !== ERRNO.ENOENT) unlinkat(dirfd, name, flags);
}

/** Removes a host path's tree: the parent is opened first, then everything goes through fds. */
export function removeTree(path: string): void {
  const slash = path.lastIndexOf('/');
  const parent = slash <= 0 ? '/' : path.slice(0, slash);
  const dirfd = openat(AT_FDCWD, parent, DIR_FLAGS);
  try {
    removeTreeAt(dirfd, path.slice(slash + 1));
  } finally {
    close(dirfd);
  }
}
