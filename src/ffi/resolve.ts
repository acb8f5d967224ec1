// The one way Stockade looks a path up as root: beneath an fd of the root it is allowed under,
// without following any symlink or crossing out of that root, so what was checked is what is
// used. A path coming from a build spec, a request or a policy is opened once here and only
// the fd is used afterwards; no component is ever looked up by name twice.
//
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) does it in the kernel
// (Linux >= 5.6); where openat2 is missing, a walk opens one component at a time with O_NOFOLLOW
// and refuses a symlink it meets the same way.
import { check, libc, STRUCT_POINTER, structSize } from './lib.js';
import { close } from './libc.js';
import { SyscallError, quote, renderFlags } from './errors.js';
import { AT_FDCWD, ERRNO, OPEN_FLAGS } from './arch.js';
import { AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, mkdirat, readlinkat, statx } from './fsat.js';

/** x86_64 (and every other architecture since 5.x): openat2's number. */
const SYS_OPENAT2 = 437;

const RESOLVE = {
  RESOLVE_NO_XDEV: 0x01,
  RESOLVE_NO_MAGICLINKS: 0x02,
  RESOLVE_NO_SYMLINKS: 0x04,
  RESOLVE_BENEATH: 0x08,
  RESOLVE_IN_ROOT: 0x10,
} as const;

const BENEATH = RESOLVE.RESOLVE_BENEATH | RESOLVE.RESOLVE_NO_SYMLINKS | RESOLVE.RESOLVE_NO_MAGICLINKS;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
const DIR_PATH_FLAGS = OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_CLOEXEC;

/** A path that may not be used as it is: a symlink on the way, `..`, or outside every allowed root. */
export class PathRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathRefused';
  }
}

/** openat2(2): one call, no retries; throws a SyscallError on failure. */
function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  const how = { flags, mode, resolve };
  const fd = Number(libc().syscall(SYS_OPENAT2, 'int', dirfd, 'const char *', path, STRUCT_POINTER.openHow, how, 'size_t', structSize(STRUCT_POINTER.openHow)));
  return check(fd, 'openat2', () =>
    `${dirfd === AT_FDCWD ? 'AT_FDCWD' : dirfd}, ${quote(path)}, {${renderFlags(flags, OPEN_FLAGS)}, 0${mode.toString(8)}, ${renderFlags(resolve, RESOLVE)}}`);
}

let openat2Missing = false;

/** The components of a relative path; `.`, `..`, empty names and absolute paths are refused. */
export function componentsOf(relative: string): string[] {
  if (relative.startsWith('/')) throw new PathRefused(`${quote(relative)}: expected a path relative to its root`);
  const parts = relative === '' || relative === '.' ? [] : relative.split('/');
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') throw new PathRefused(`${quote(relative)}: component ${quote(part)} is not allowed (no empty, . or .. components)`);
  }
  return parts;
}

/**
 * Opens `relative` beneath the directory `rootFd` with `flags` (O_CLOEXEC and O_NOFOLLOW are
 * always added). A symlink in any component, the last included, is refused with a PathRefused
 * naming it; `label` (e.g. `input /gnu/store/x`) starts that message. An empty path reopens
 * the root itself.
 */
export function openBeneath(rootFd: number, relative: string, flags: number, options: { mode?: number; label?: string } = {}): number {
  const parts = componentsOf(relative);
  const all = flags | OPEN_FLAGS.O_CLOEXEC | OPEN_FLAGS.O_NOFOLLOW;
  const path = parts.length ? parts.join('/') : '.';
  if (!openat2Missing) {
    try {
      return refuseOpenedSymlink(openat2(rootFd, path, all, options.mode ?? 0, BENEATH), rootFd, parts, options.label);
    } catch (err) {
      if (!(err instanceof SyscallError)) throw err;
      if (err.errno === ERRNO.ENOSYS) openat2Missing = true;
      else if (err.errno === ERRNO.ELOOP || err.errno === ERRNO.EXDEV) throw symlinkRefusal(rootFd, parts, options.label, err);
      // O_DIRECTORY on a trailing symlink says ENOTDIR.
      else if (err.errno === ERRNO.ENOTDIR) throw findSymlink(rootFd, parts, options.label) ?? err;
      else throw err;
    }
  }
  return openBeneathByWalk(rootFd, relative, flags, options);
}

/**
 * openBeneath for kernels without openat2: every component but the last is opened O_PATH,
 * O_NOFOLLOW, and must be a directory; the last with the caller's flags and O_NOFOLLOW.
 * Exported so tests prove it refuses what openat2 refuses.
 */
export function openBeneathByWalk(rootFd: number, relative: string, flags: number, options: { mode?: number; label?: string } = {}): number {
  const parts = componentsOf(relative);
  const all = flags | OPEN_FLAGS.O_CLOEXEC | OPEN_FLAGS.O_NOFOLLOW;
  if (parts.length === 0) return reopen(rootFd, all);
  let dirFd = rootFd;
  try {
    for (const [i, part] of parts.entries()) {
      const last = i === parts.length - 1;
      let fd: number;
      try {
        fd = openAt(dirFd, part, last ? all : DIR_PATH_FLAGS, options.mode ?? 0);
      } catch (err) {
        if (err instanceof SyscallError && (err.errno === ERRNO.ELOOP || (err.errno === ERRNO.ENOTDIR && isSymlinkAt(dirFd, part)))) {
          throw symlinkRefusal(rootFd, parts, options.label, err);
        }
        throw err;
      }
      refuseOpenedSymlink(fd, rootFd, parts, options.label);
      if (dirFd !== rootFd) close(dirFd);
      dirFd = fd;
    }
    const result = dirFd;
    dirFd = rootFd;
    return result;
  } finally {
    if (dirFd !== rootFd) close(dirFd);
  }
}

/** O_PATH|O_NOFOLLOW opens a symlink itself rather than failing: refused here, the fd closed. */
function refuseOpenedSymlink(fd: number, rootFd: number, parts: string[], label: string | undefined): number {
  if ((statx(fd, '', AT_EMPTY_PATH).mode & S_IFMT) !== S_IFLNK) return fd;
  close(fd);
  throw symlinkRefusal(rootFd, parts, label);
}

function openAt(dirfd: number, name: string, flags: number, mode: number): number {
  const fd = libc().openat(dirfd, name, flags, 'uint32_t', mode);
  return check(fd, 'openat', () => `${dirfd}, ${quote(name)}, ${renderFlags(flags, OPEN_FLAGS)}`);
}

function isSymlinkAt(dirFd: number, name: string): boolean {
  try {
    return (statx(dirFd, name, AT_SYMLINK_NOFOLLOW).mode & S_IFMT) === S_IFLNK;
  } catch {
    return false;
  }
}

/** A new fd on what `fd` refers to, with other flags (the /proc/self/fd magic link, resolved by the kernel itself). */
function reopen(fd: number, flags: number): number {
  return openAt(AT_FDCWD, `/proc/self/fd/${fd}`, flags & ~OPEN_FLAGS.O_NOFOLLOW, 0);
}

/** The refusal of a path the kernel found to pass a symlink or leave its root. */
function symlinkRefusal(rootFd: number, parts: string[], label: string | undefined, cause?: SyscallError): PathRefused {
  return findSymlink(rootFd, parts, label) ??
    new PathRefused(`${label ? `${label}: ` : ''}refused: it leaves its root or passes a symlink${cause ? ` (${cause.message})` : ''}`);
}

/** Finds the first symlink among `parts` under `rootFd` to name it; only for the message. */
function findSymlink(rootFd: number, parts: string[], label: string | undefined): PathRefused | undefined {
  const prefix = label ? `${label}: ` : '';
  let dirFd = rootFd;
  try {
    for (const [i, part] of parts.entries()) {
      const shown = parts.slice(0, i + 1).join('/');
      let st;
      try {
        st = statx(dirFd, part, AT_SYMLINK_NOFOLLOW);
      } catch {
        break;
      }
      if ((st.mode & S_IFMT) === S_IFLNK) {
        let target = '?';
        try {
          target = readlinkat(dirFd, part);
        } catch {
          // Gone meanwhile: the component is still named.
        }
        return new PathRefused(`${prefix}component ${quote(shown)} is a symlink (to ${quote(target)}); symlinks are not followed here`);
      }
      if ((st.mode & S_IFMT) !== S_IFDIR) break;
      const next = openAt(dirFd, part, DIR_PATH_FLAGS, 0);
      if (dirFd !== rootFd) close(dirFd);
      dirFd = next;
    }
  } catch {
    // The walk is only for the message.
  } finally {
    if (dirFd !== rootFd) close(dirFd);
  }
  return undefined;
}

/**
 * Opens the directory `relative` beneath `rootFd`, creating each missing component with
 * `mode` through the fd of its parent; `onMade(parentFd, name)` is told of each directory
 * made (parentFd is only valid during the call). Returns an O_DIRECTORY fd.
 */
export function makeDirsBeneath(rootFd: number, relative: string, mode: number, onMade?: (parentFd: number, name: string) => void, label?: string): number {
  const parts = componentsOf(relative);
  const dirFlags = OPEN_FLAGS.O_DIRECTORY;
  let dirFd = openBeneath(rootFd, '', dirFlags, { label });
  try {
    for (const part of parts) {
      let made = false;
      try {
        mkdirat(dirFd, part, mode);
        made = true;
      } catch (err) {
        if (!(err instanceof SyscallError && err.errno === ERRNO.EEXIST)) throw err;
      }
      if (made) onMade?.(dirFd, part);
      const next = openBeneath(dirFd, part, dirFlags, { label });
      close(dirFd);
      dirFd = next;
    }
    const result = dirFd;
    dirFd = -1;
    return result;
  } finally {
    if (dirFd >= 0) close(dirFd);
  }
}

/**
 * The allowed root a host path lies under (the longest one, compared by whole components) and
 * the rest of the path relative to it; undefined when it lies under none. Roots are admin-set
 * (policy `*.under`, the build dir parent) and opened as written; only the rest is resolved beneath.
 */
export function splitUnderRoot(path: string, roots: readonly string[]): { root: string; relative: string } | undefined {
  let best: string | undefined;
  for (const root of roots) {
    const r = root.length > 1 ? root.replace(/\/+$/, '') : root;
    const under = r === '/' ? path.startsWith('/') : path === r || path.startsWith(r + '/');
    if (under && (best === undefined || r.length > best.length)) best = r;
  }
  if (best === undefined) return undefined;
  const relative = best === '/' ? path.slice(1) : path.slice(best.length + 1);
  return { root: best, relative: relative.replace(/\/+$/, '') };
}

/** Opens an admin-set root (O_PATH, following its symlinks: the admin chose them). */
export function openRoot(path: string): number {
  return openAt(AT_FDCWD, path, OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_CLOEXEC, 0);
}

/** True when `err` says the file or directory was not there. */
export function isMissing(err: unknown): boolean {
  return err instanceof SyscallError && err.errno === ERRNO.ENOENT;
}
