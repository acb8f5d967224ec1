// The *at file calls, so trees are walked and removed through directory fds, never by
// absolute path: a symlink swapped in by a build cannot redirect them (CVE-2025-46415).
import { readdirSync } from 'node:fs';
import { check, lastErrno, libc, type StatxStruct, type Timespec } from './lib.js';
import { close } from './libc.js';
import { quote, renderFlags, renderMode } from './errors.js';
import { AT_FDCWD, ERRNO, OPEN_FLAGS } from './arch.js';

export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_NOFOLLOW = 0x100;

function dirLabel(dirfd: number): string {
  return dirfd === AT_FDCWD ? 'AT_FDCWD' : String(dirfd);
}

/** A name as given, or as readdir's bytes (made NUL-terminated), with how errors show it. */
function cName(name: string | Buffer): { arg: string | Buffer; shown: string } {
  return typeof name === 'string' ? { arg: name, shown: quote(name) } : { arg: rawName(name), shown: quote(name.toString('utf8')) };
}

export function openat(dirfd: number, name: string | Buffer, flags: number, mode = 0): number {
  const { arg, shown } = cName(name);
  const fd = libc().openat(dirfd, arg, flags, 'uint32_t', mode);
  return check(fd, 'openat', () => `${dirLabel(dirfd)}, ${shown}, ${flags & 3 ? '' : 'O_RDONLY|'}${renderFlags(flags, OPEN_FLAGS)}`);
}

export function unlinkat(dirfd: number, name: string, flags: number): void {
  check(libc().unlinkat(dirfd, name, flags), 'unlinkat', () =>
    `${dirLabel(dirfd)}, ${quote(name)}, ${flags & AT_REMOVEDIR ? 'AT_REMOVEDIR' : '0'}`);
}

export function mkdirat(dirfd: number, name: string, mode: number): void {
  check(libc().mkdirat(dirfd, name, mode), 'mkdirat', () =>
    `${dirLabel(dirfd)}, ${quote(name)}, ${renderMode(mode)}`);
}

export function fchown(fd: number, uid: number, gid: number): void {
  check(libc().fchown(fd, uid, gid), 'fchown', () => `${fd}, ${uid}, ${gid}`);
}

export function fchmod(fd: number, mode: number): void {
  check(libc().fchmod(fd, mode), 'fchmod', () => `${fd}, ${renderMode(mode)}`);
}

const DIR_FLAGS = OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_CLOEXEC;

/** Opens a directory without following a symlink in its last component. */
export function openDirAt(dirfd: number, name: string): number {
  return openat(dirfd, name, DIR_FLAGS);
}

/** How many directory fds a tree walk holds at most, whatever the depth of the tree. */
export const WALK_WINDOW = 64;

/**
 * A file name as readdir gave it: bytes, NUL-terminated, so a name that is not UTF-8 reaches
 * the very file too (libc takes it as const char *).
 */
type RawName = Buffer;

function rawName(name: string | Buffer): RawName {
  return Buffer.concat([typeof name === 'string' ? Buffer.from(name) : name, Buffer.from([0])]);
}

function shownName(name: RawName): string {
  return quote(name.subarray(0, -1).toString('utf8'));
}

/** Opens a directory to remove it; undefined when it is no directory (then removed) or already gone. */
function openForRemoval(dirfd: number, name: RawName): number | undefined {
  const fd = libc().openat(dirfd, name, DIR_FLAGS, 'uint32_t', 0);
  if (fd >= 0) return fd;
  const errno = lastErrno();
  if (errno === ERRNO.ENOENT) return undefined;
  if (errno !== ERRNO.ENOTDIR && errno !== ERRNO.ELOOP) check(fd, 'openat', () => `${dirLabel(dirfd)}, ${shownName(name)}, O_RDONLY|${renderFlags(DIR_FLAGS, OPEN_FLAGS)}`);
  unlinkIfPresent(dirfd, name, 0);
  return undefined;
}

/** Names in an open directory; /proc/self/fd/N names the directory itself, whatever its path has become since. */
function namesIn(fd: number): RawName[] {
  return readdirSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' }).map(rawName);
}

/**
 * Removes `name` under `dirfd` and everything below it through directory fds. A symlink is
 * removed as a link, never followed. Missing entries are fine (something else removed them).
 * Iterative, holding at most WALK_WINDOW directory fds: a directory deeper than that is first
 * moved up to the top of the tree being removed (renameat2 between fds), then removed from there.
 */
export function removeTreeAt(dirfd: number, name: string): void {
  const rootName = rawName(name);
  const rootFd = openForRemoval(dirfd, rootName);
  if (rootFd === undefined) return;
  const stack: { fd: number; name: RawName; pending: RawName[] }[] = [];
  // Each fd goes on the stack before anything can throw, so the finally closes it.
  const enter = (fd: number, entry: RawName) => {
    const frame = { fd, name: entry, pending: [] as RawName[] };
    stack.push(frame);
    frame.pending = namesIn(fd);
  };
  try {
    enter(rootFd, rootName);
    let moved = 0;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const entry = top.pending.pop();
      if (entry === undefined) {
        stack.pop();
        close(top.fd);
        if (stack.length) unlinkIfPresent(stack[stack.length - 1].fd, top.name, AT_REMOVEDIR);
        continue;
      }
      const fd = openForRemoval(top.fd, entry);
      if (fd === undefined) continue;
      if (stack.length < WALK_WINDOW) {
        enter(fd, entry);
        continue;
      }
      close(fd);
      for (;;) {
        const upName = `.stockade-deep-${moved++}`;
        const r = libc().renameat2(top.fd, entry, rootFd, upName, RENAME_NOREPLACE);
        if (r < 0 && lastErrno() === ERRNO.EEXIST) continue;
        check(r, 'renameat2', () => `${top.fd}, ${shownName(entry)}, ${rootFd}, ${quote(upName)}, RENAME_NOREPLACE`);
        stack[0].pending.push(rawName(upName));
        break;
      }
    }
  } finally {
    for (const frame of stack) close(frame.fd);
  }
  unlinkIfPresent(dirfd, rootName, AT_REMOVEDIR);
}

/**
 * The directories from a root fd down to the one a walk is in, by name. Only the deepest
 * WALK_WINDOW are held open; when the walk comes back up to one that was closed, it is
 * reopened name by name from the root (O_NOFOLLOW, never `..`) and must be the very
 * directory it was (device and inode), or the walk fails.
 */
export class DirChain {
  private readonly levels: { name: string; id: string; fd: number | undefined }[] = [];

  constructor(private readonly rootFd: number) {}

  get depth(): number {
    return this.levels.length;
  }

  /** Goes down into `name`, opened as `fd`: the chain owns the fd from now on. */
  enter(name: string, fd: number): void {
    this.levels.push({ name, id: '', fd });
    this.levels[this.levels.length - 1].id = idOf(fstat(fd));
    const shallowest = this.levels.length - 1 - WALK_WINDOW;
    const drop = shallowest >= 0 ? this.levels[shallowest] : undefined;
    if (drop?.fd !== undefined) {
      close(drop.fd);
      drop.fd = undefined;
    }
  }

  /** Goes back up one level. */
  leave(): void {
    const level = this.levels.pop();
    if (level?.fd !== undefined) close(level.fd);
  }

  /** The fd of the directory the walk is in (the root's at depth 0). */
  fd(): number {
    const n = this.levels.length;
    if (n === 0) return this.rootFd;
    const last = this.levels[n - 1];
    if (last.fd !== undefined) return last.fd;
    let parent = this.rootFd;
    let transient: number | undefined;
    try {
      for (let i = 0; i < n; i++) {
        const level = this.levels[i];
        const fd = level.fd ?? openDirAt(parent, level.name);
        if (transient !== undefined) close(transient);
        transient = undefined;
        if (level.fd === undefined) {
          if (i >= n - WALK_WINDOW) level.fd = fd;
          else transient = fd;
          if (idOf(fstat(fd)) !== level.id) throw new Error(`directory ${quote(level.name)} (level ${i + 1}) was replaced while it was walked`);
        }
        parent = fd;
      }
    } finally {
      if (transient !== undefined) close(transient);
    }
    return last.fd!;
  }

  /** Closes every fd the chain holds (not the root's). */
  close(): void {
    while (this.levels.length) this.leave();
  }
}

function idOf(st: Stat): string {
  return `${st.dev}:${st.ino}`;
}

function unlinkIfPresent(dirfd: number, name: RawName, flags: number): void {
  const result = libc().unlinkat(dirfd, name, flags);
  if (result < 0 && lastErrno() !== ERRNO.ENOENT) {
    check(result, 'unlinkat', () => `${dirLabel(dirfd)}, ${shownName(name)}, ${flags & AT_REMOVEDIR ? 'AT_REMOVEDIR' : '0'}`);
  }
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

// ---- what output hand-over needs: stat, links, owners, times, renames, copies, xattrs ----

export const AT_EMPTY_PATH = 0x1000;
export const RENAME_NOREPLACE = 1;
const AT_FLAGS = { AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_EMPTY_PATH };
/** statx's basic fields (type, mode, nlink, uid, gid, ino, size). */
const STATX_BASIC_STATS = 0x7ff;

export interface Stat {
  /** File type and permission bits, as st_mode. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  ino: bigint;
  /** major:minor of the filesystem holding it. */
  dev: string;
  size: number;
}

export function statx(dirfd: number, name: string | Buffer, flags: number): Stat {
  const st: Partial<StatxStruct> = {};
  const { arg, shown } = cName(name);
  check(libc().statx(dirfd, arg, flags, STATX_BASIC_STATS, st), 'statx', () =>
    `${dirLabel(dirfd)}, ${shown}, ${renderFlags(flags, AT_FLAGS)}`);
  return {
    nlink: st.stx_nlink!,
    uid: st.stx_uid!,
    gid: st.stx_gid!,
    mode: st.stx_mode!,
    ino: BigInt(st.stx_ino!),
    size: Number(st.stx_size!),
    dev: `${st.stx_dev_major}:${st.stx_dev_minor}`,
  };
}

/** What an open fd refers to (fstat). */
export function fstat(fd: number): Stat {
  return statx(fd, '', AT_EMPTY_PATH);
}

export function readlinkat(dirfd: number, name: string): string {
  const buf = Buffer.alloc(4096);
  const n = check(Number(libc().readlinkat(dirfd, name, buf, buf.length)), 'readlinkat', () =>
    `${dirLabel(dirfd)}, ${quote(name)}`);
  // PATH_MAX holds every target the kernel accepts; a full buffer would mean truncation.
  if (n >= buf.length) throw new Error(`readlinkat(${dirLabel(dirfd)}, ${quote(name)}): target longer than ${buf.length - 1} bytes`);
  return buf.subarray(0, n).toString('latin1');
}

/** Creates a symlink; `target` is written as is, bytes kept (latin1 round-trips readlinkat). */
export function symlinkat(target: string, dirfd: number, name: string): void {
  check(libc().symlinkat(Buffer.from(target + '\0', 'latin1'), dirfd, name), 'symlinkat', () =>
    `${quote(target)}, ${dirLabel(dirfd)}, ${quote(name)}`);
}

export function fchownat(dirfd: number, name: string | Buffer, uid: number, gid: number, flags: number): void {
  const { arg, shown } = cName(name);
  check(libc().fchownat(dirfd, arg, uid, gid, flags), 'fchownat', () =>
    `${dirLabel(dirfd)}, ${shown}, ${uid}, ${gid}, ${renderFlags(flags, AT_FLAGS)}`);
}

/** atime and mtime, both `seconds` with no nanoseconds. */
function timespecs(seconds: number): [Timespec, Timespec] {
  return [{ tv_sec: seconds, tv_nsec: 0 }, { tv_sec: seconds, tv_nsec: 0 }];
}

/** Sets atime and mtime of `name` to `seconds`. */
export function utimensat(dirfd: number, name: string, seconds: number, flags: number): void {
  check(libc().utimensat(dirfd, name, timespecs(seconds), flags), 'utimensat', () =>
    `${dirLabel(dirfd)}, ${quote(name)}, ${seconds}, ${renderFlags(flags, AT_FLAGS)}`);
}

/** Sets atime and mtime of an open file to `seconds`. */
export function futimens(fd: number, seconds: number): void {
  check(libc().futimens(fd, timespecs(seconds)), 'futimens', () => `${fd}, ${seconds}`);
}

export function renameat2(olddirfd: number, oldname: string, newdirfd: number, newname: string, flags: number): void {
  check(libc().renameat2(olddirfd, oldname, newdirfd, newname, flags), 'renameat2', () =>
    `${dirLabel(olddirfd)}, ${quote(oldname)}, ${dirLabel(newdirfd)}, ${quote(newname)}, ${flags & RENAME_NOREPLACE ? 'RENAME_NOREPLACE' : flags}`);
}

export const SEEK_SET = 0;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;
const WHENCE = ['SEEK_SET', 'SEEK_CUR', 'SEEK_END', 'SEEK_DATA', 'SEEK_HOLE'];

/** lseek(2); returns the new offset. SEEK_DATA beyond the last data fails with ENXIO. */
export function lseek(fd: number, offset: number, whence: number): number {
  return check(Number(libc().lseek(fd, offset, whence)), 'lseek', () => `${fd}, ${offset}, ${WHENCE[whence] ?? whence}`);
}

export function ftruncate(fd: number, length: number): void {
  check(libc().ftruncate(fd, length), 'ftruncate', () => `${fd}, ${length}`);
}

/** A loff_t the kernel reads and advances. */
function offsetCell(offset: number): BigInt64Array {
  return BigInt64Array.of(BigInt(offset));
}

/**
 * copy_file_range(2) from `inOffset` of `inFd` to the same offset of `outFd`, neither file
 * offset moved: copies up to `count` bytes, returns how many (0 at the end of `inFd`).
 */
export function copyFileRange(inFd: number, outFd: number, offset: number, count: number): number {
  return check(Number(libc().copy_file_range(inFd, offsetCell(offset), outFd, offsetCell(offset), count, 0)),
    'copy_file_range', () => `${inFd}, [${offset}], ${outFd}, [${offset}], ${count}, 0`);
}

/** sendfile(2) from `inOffset` of `inFd` (its file offset not moved) to the current offset of `outFd`; returns how many bytes (0 at the end). */
export function sendfile(outFd: number, inFd: number, inOffset: number, count: number): number {
  return check(Number(libc().sendfile(outFd, inFd, offsetCell(inOffset), count)), 'sendfile', () => `${outFd}, ${inFd}, [${inOffset}], ${count}`);
}

/** Names of the extended attributes of an open file (ACLs are system.posix_acl_*). */
export function flistxattr(fd: number): string[] {
  for (;;) {
    const size = check(Number(libc().flistxattr(fd, null, 0)), 'flistxattr', () => `${fd}, NULL, 0`);
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const n = Number(libc().flistxattr(fd, buf, size));
    // ERANGE: an attribute was added between the two calls; ask again.
    if (n < 0 && lastErrno() === ERRNO.ERANGE) continue;
    check(n, 'flistxattr', () => `${fd}, buf, ${size}`);
    return buf.subarray(0, n).toString('latin1').split('\0').filter(Boolean);
  }
}

export function fremovexattr(fd: number, name: string): void {
  check(libc().fremovexattr(fd, name), 'fremovexattr', () => `${fd}, ${quote(name)}`);
}
