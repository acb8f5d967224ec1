// Output hand-over, as guix-daemon and Nix do it but before anything is exposed (CVE-2024-52867):
// the build wrote each output in its private build directory; once every process of the build
// is gone, each output is copied through fds (O_NOFOLLOW, fstat on what was opened) into a
// fresh root-owned 0700 staging directory next to its destination, which the build never saw,
// as fresh inodes (an fd kept on a build's file reaches nothing installed: CVE-2024-27297), so no
// symlink planted by a build can redirect a write (CVE-2026-39860). There every entry gets the
// canonical owner, mode and mtime and loses its xattrs; then the outputs are renamed into place,
// all or none. A kept failed build tree is made safe in place the same way.
import { mkdirSync, readdirSync, type Dirent } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { AT_FDCWD, ERRNO, FILE_TYPE, OPEN_FLAGS } from '../ffi/arch.js';
import {
  AT_SYMLINK_NOFOLLOW, RENAME_NOREPLACE, copyToEnd, fchmod, fchown, fchownat, flistxattr, fremovexattr, fstat, futimens, mkdirat,
  openDirAt, openat, readlinkat, removeTreeAt, renameat2, statx, symlinkat, unlinkat, utimensat, type Stat,
} from '../ffi/fsat.js';
import { SyscallError } from '../ffi/errors.js';
import { close } from '../ffi/libc.js';
import type { OutputsPlan } from '../plan/types.js';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const SPECIAL_BITS = 0o7000; // setuid, setgid, sticky
const S_IXUSR = 0o100;
/** LSMs label new inodes themselves; that label is the host's, not the build's. */
const KEPT_XATTRS = new Set(['security.selinux']);
const READ_FLAGS = OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_NONBLOCK | OPEN_FLAGS.O_NOCTTY | OPEN_FLAGS.O_CLOEXEC;
const CREATE_FLAGS = OPEN_FLAGS.O_WRONLY | OPEN_FLAGS.O_CREAT | OPEN_FLAGS.O_EXCL | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_CLOEXEC;

/** What the hand-over did, for RunResult. */
export interface HandOverReport {
  outputs: { path: string; files: number; directories: number; symlinks: number; bytes: number }[];
  /** Entries whose setuid, setgid or sticky bit was dropped. */
  stripped: number;
  /** Entries whose extended attributes (ACLs included) were not carried over. */
  xattrsDropped: number;
}

/** An output the build left that may not be handed over; the message names the path. */
export class OutputRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputRefused';
  }
}

type Kind = 'directory' | 'regular file' | 'symlink' | 'FIFO' | 'socket' | 'character device' | 'block device' | 'unknown file type';

function kindOfMode(mode: number): Kind {
  switch (mode & S_IFMT) {
    case FILE_TYPE.S_IFDIR: return 'directory';
    case FILE_TYPE.S_IFREG: return 'regular file';
    case S_IFLNK: return 'symlink';
    case FILE_TYPE.S_IFIFO: return 'FIFO';
    case FILE_TYPE.S_IFSOCK: return 'socket';
    case FILE_TYPE.S_IFCHR: return 'character device';
    case FILE_TYPE.S_IFBLK: return 'block device';
    default: return 'unknown file type';
  }
}

/** The type readdir reported, or the one statx finds when the filesystem does not say. */
function kindOf(entry: Dirent<Buffer>, dirFd: number, name: string): Kind {
  if (entry.isDirectory()) return 'directory';
  if (entry.isFile()) return 'regular file';
  if (entry.isSymbolicLink()) return 'symlink';
  if (entry.isFIFO()) return 'FIFO';
  if (entry.isSocket()) return 'socket';
  if (entry.isCharacterDevice()) return 'character device';
  if (entry.isBlockDevice()) return 'block device';
  return kindOfMode(statx(dirFd, name, AT_SYMLINK_NOFOLLOW).mode);
}

/** Entries of an open directory; /proc/self/fd/N names the directory itself, whatever its path. */
function entries(dirFd: number): Dirent<Buffer>[] {
  return readdirSync(`/proc/self/fd/${dirFd}`, { withFileTypes: true, encoding: 'buffer' });
}

/** File names go to libc as UTF-8; a name that is not would reach a different file. */
function nameOf(entry: Dirent<Buffer>, where: () => string): string {
  const name = entry.name.toString('utf8');
  if (!Buffer.from(name, 'utf8').equals(entry.name)) throw new OutputRefused(`${where()}/${entry.name.toString('latin1')}: file name is not valid UTF-8`);
  return name;
}

function withFd<T>(fd: number, use: (fd: number) => T): T {
  try {
    return use(fd);
  } finally {
    close(fd);
  }
}

/** Drops every xattr (ACLs are xattrs) of an open file but the host's LSM label; returns whether it had any. */
function stripXattrs(fd: number): boolean {
  const names = flistxattr(fd).filter((n) => !KEPT_XATTRS.has(n));
  for (const name of names) fremovexattr(fd, name);
  return names.length > 0;
}

/** No output may already exist: each is created by its hand-over alone. */
export function checkOutputsFree(outputs: string[]): void {
  for (const output of outputs) {
    if (lexists(output)) throw new Error(`output ${output} already exists`);
  }
}

function lexists(path: string): boolean {
  try {
    statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);
    return true;
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ERRNO.ENOENT) return false;
    throw err;
  }
}

interface Counts {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

/** Copies one output tree from the build's private directory into a staging directory. */
class OutputCopy {
  readonly counts: Counts = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  stripped = 0;
  xattrsDropped = 0;
  /** Non-directories by inode: how many links the output holds of each. */
  private readonly links = new Map<bigint, { path: string; nlink: number; seen: number }>();
  private dev = '';

  constructor(private readonly output: string, private readonly buildUid: number, private readonly canon: OutputsPlan) {}

  private refuse(rel: string, why: string): never {
    throw new OutputRefused(`${rel ? join(this.output, rel) : this.output}: ${why}`);
  }

  /** What was opened must be what was listed, made by the build, on the output's filesystem. */
  private admit(rel: string, expected: Kind, st: Stat): void {
    const kind = kindOfMode(st.mode);
    if (kind !== expected) this.refuse(rel, `changed from ${expected} to ${kind} during hand-over`);
    if (st.uid !== this.buildUid) this.refuse(rel, `owned by uid ${st.uid}, not by the build user (uid ${this.buildUid})`);
    if (st.dev !== this.dev) this.refuse(rel, 'on another filesystem than the output');
    if ((st.mode & SPECIAL_BITS) !== 0) this.stripped++;
    if (kind !== 'directory' && st.nlink > 1) {
      const seen = this.links.get(st.ino);
      if (seen) seen.seen++;
      else this.links.set(st.ino, { path: rel, nlink: st.nlink, seen: 1 });
    }
  }

  /** The canonical owner, mode, no xattrs, and mtime, in that order (chown would clear setuid bits). */
  private finish(fd: number, mode: number): void {
    stripXattrs(fd);
    fchown(fd, this.canon.owner.uid, this.canon.owner.gid);
    fchmod(fd, mode);
    futimens(fd, this.canon.mtime);
  }

  /** Copies the output whose private directory is open as `srcFd` into `dstFd`. */
  copyRoot(srcFd: number, dstFd: number): void {
    const st = fstat(srcFd);
    this.dev = st.dev;
    this.admit('', 'directory', st);
    this.copyDir(srcFd, dstFd, '');
    if (flistxattr(srcFd).length) this.xattrsDropped++;
    this.finish(dstFd, this.canon.directoryMode);
    for (const link of this.links.values()) {
      if (link.seen < link.nlink) this.refuse(link.path, `has ${link.nlink} hard links, ${link.nlink - link.seen} of them outside the output`);
    }
  }

  private copyDir(srcFd: number, dstFd: number, rel: string): void {
    this.counts.directories++;
    for (const entry of entries(srcFd)) {
      const name = nameOf(entry, () => join(this.output, rel));
      const path = rel ? `${rel}/${name}` : name;
      const kind = kindOf(entry, srcFd, name);
      if (kind === 'directory') {
        withFd(openDirAt(srcFd, name), (childFd) => {
          this.admit(path, kind, fstat(childFd));
          if (flistxattr(childFd).length) this.xattrsDropped++;
          mkdirat(dstFd, name, 0o700);
          withFd(openDirAt(dstFd, name), (newFd) => {
            this.copyDir(childFd, newFd, path);
            this.finish(newFd, this.canon.directoryMode);
          });
        });
      } else if (kind === 'regular file') {
        withFd(openat(srcFd, name, READ_FLAGS), (fileFd) => {
          const st = fstat(fileFd);
          this.admit(path, kind, st);
          if (flistxattr(fileFd).length) this.xattrsDropped++;
          withFd(openat(dstFd, name, CREATE_FLAGS, 0o600), (newFd) => {
            this.counts.bytes += copyToEnd(newFd, fileFd);
            this.finish(newFd, st.mode & S_IXUSR ? this.canon.executableMode : this.canon.fileMode);
          });
        });
        this.counts.files++;
      } else if (kind === 'symlink') {
        // A symlink is data: its target is copied, never followed. Linux keeps no user xattrs or ACLs on symlinks.
        this.admit(path, kind, statx(srcFd, name, AT_SYMLINK_NOFOLLOW));
        symlinkat(readlinkat(srcFd, name), dstFd, name);
        fchownat(dstFd, name, this.canon.owner.uid, this.canon.owner.gid, AT_SYMLINK_NOFOLLOW);
        utimensat(dstFd, name, this.canon.mtime, AT_SYMLINK_NOFOLLOW);
        this.counts.symlinks++;
      } else {
        this.refuse(path, `is a ${kind}: an output may hold only regular files, directories and symlinks`);
      }
    }
  }
}

interface Staged {
  output: string;
  parentFd: number;
  stagingName: string;
}

/** A root-owned 0700 directory next to the output's destination, without inherited ACLs. */
function createStaging(output: string): Staged {
  // Missing parents are made root-owned, as the store's are.
  mkdirSync(dirname(output), { recursive: true, mode: 0o755 });
  const parentFd = openDirAt(AT_FDCWD, dirname(output));
  const stagingName = `.stockade-handover-${basename(output)}-${randomBytes(6).toString('hex')}`;
  try {
    mkdirat(parentFd, stagingName, 0o700);
    withFd(openDirAt(parentFd, stagingName), (fd) => {
      fchown(fd, 0, 0);
      fchmod(fd, 0o700);
      // A default ACL inherited from the parent would be inherited again by every copy.
      stripXattrs(fd);
      mkdirat(fd, 'out', 0o700);
    });
  } catch (err) {
    removeTreeAt(parentFd, stagingName);
    close(parentFd);
    throw err;
  }
  return { output, parentFd, stagingName };
}

/**
 * Hands every output over (sources: the build's private output directories, in the order of
 * `outputs`). Call only once no process of the build is left. All or nothing: on any refusal
 * or error nothing is installed and the error is thrown.
 */
export function handOver(outputs: string[], sources: string[], buildUid: number, canon: OutputsPlan): HandOverReport {
  const report: HandOverReport = { outputs: [], stripped: 0, xattrsDropped: 0 };
  const staged: Staged[] = [];
  const installed: Staged[] = [];
  try {
    outputs.forEach((output, i) => {
      const stage = createStaging(output);
      staged.push(stage);
      const copy = new OutputCopy(output, buildUid, canon);
      withFd(openDirAt(AT_FDCWD, sources[i]), (srcFd) =>
        withFd(openDirAt(stage.parentFd, stage.stagingName), (stagingFd) => withFd(openDirAt(stagingFd, 'out'), (dstFd) => copy.copyRoot(srcFd, dstFd))),
      );
      report.outputs.push({ path: output, ...copy.counts });
      report.stripped += copy.stripped;
      report.xattrsDropped += copy.xattrsDropped;
    });
    for (const stage of staged) {
      withFd(openDirAt(stage.parentFd, stage.stagingName), (stagingFd) => renameat2(stagingFd, 'out', stage.parentFd, basename(stage.output), RENAME_NOREPLACE));
      installed.push(stage);
    }
    return report;
  } catch (err) {
    for (const stage of installed) removeTreeAt(stage.parentFd, basename(stage.output));
    throw err;
  } finally {
    for (const stage of staged) {
      removeTreeAt(stage.parentFd, stage.stagingName);
      close(stage.parentFd);
    }
  }
}

/**
 * A failed build's tree kept for inspection (--keep-failed), made safe in place: every entry
 * owned by `owner`, no setuid/setgid/sticky bit, nothing group- or world-writable, no xattrs
 * (ACLs), and FIFOs, sockets and devices removed. Call only once no process of the build is left.
 */
export function secureKeptTree(path: string, owner: OutputsPlan['owner']): void {
  withFd(openDirAt(AT_FDCWD, path), (fd) => {
    secureDir(fd, owner);
    secureOpened(fd, owner);
  });
}

function secureOpened(fd: number, owner: OutputsPlan['owner']): void {
  const st = fstat(fd);
  stripXattrs(fd);
  fchown(fd, owner.uid, owner.gid);
  fchmod(fd, st.mode & 0o755);
}

function secureDir(dirFd: number, owner: OutputsPlan['owner']): void {
  for (const entry of entries(dirFd)) {
    // A name that is not UTF-8 cannot be reached through libc here; it is left as it is, in the root-only directory.
    const name = entry.name.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(entry.name)) continue;
    const kind = kindOf(entry, dirFd, name);
    if (kind === 'directory') {
      withFd(openDirAt(dirFd, name), (fd) => {
        secureDir(fd, owner);
        secureOpened(fd, owner);
      });
    } else if (kind === 'regular file') {
      withFd(openat(dirFd, name, READ_FLAGS), (fd) => {
        if (kindOfMode(fstat(fd).mode) === 'regular file') secureOpened(fd, owner);
      });
    } else if (kind === 'symlink') {
      fchownat(dirFd, name, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
    } else {
      unlinkat(dirFd, name, 0);
    }
  }
}
