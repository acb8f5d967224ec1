// Output hand-over, as guix-daemon and Nix do it but before anything is exposed (CVE-2024-52867):
// the build wrote each output in its private build directory; once every process of the build
// is gone, each output is copied through fds (O_NOFOLLOW, fstat on what was opened) into a
// fresh root-owned 0700 staging directory next to its destination, which the build never saw,
// as fresh inodes (an fd kept on a build's file reaches nothing installed: CVE-2024-27297), so no
// symlink planted by a build can redirect a write (CVE-2026-39860). There every entry gets the
// canonical owner, mode and mtime and loses its xattrs; then the outputs are renamed into place,
// all or none. A kept failed build tree is made safe in place the same way.
//
// Permissions, as guix-daemon's registerOutputs and canonicalisePathMetaData do it: an output
// whose top directory is group- or world-writable is rejected (someone else could have written
// into it); entries below it are normalised (0444/0555), whatever their mode was.
//
// Walks are iterative and hold a bounded number of fds (DirChain), whatever the depth. Every
// path of an output must fit in PATH_MAX, so it can be opened by name; a deeper output is refused.
// The copy yields to the event loop every so many entries and bytes (the daemon runs many builds
// in one process); the fds it holds stay the same across turns, nothing is resolved by path again.
import { readdirSync, type Dirent } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname } from 'node:path';
import { AT_FDCWD, ERRNO, FILE_TYPE, OPEN_FLAGS } from '../ffi/arch.js';
import {
  AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, DirChain, RENAME_NOREPLACE, fchmod, fchown, fchownat, flistxattr, fremovexattr, fstat, futimens, mkdirat,
  openDirAt, openat, readlinkat, removeTreeAt, renameat2, sendfile, statx, symlinkat, unlinkat, utimensat, type Stat,
} from '../ffi/fsat.js';
import { SyscallError } from '../ffi/errors.js';
import { close } from '../ffi/libc.js';
import type { OutputsPlan } from '../plan/types.js';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const SPECIAL_BITS = 0o7000; // setuid, setgid, sticky
const S_IXUSR = 0o100;
const S_IWGRP_OR_OTH = 0o022;
/** Longest path the kernel resolves by name (PATH_MAX, its terminating NUL excluded). */
const MAX_PATH_BYTES = 4095;
/** The copy gives the event loop a turn after this many entries or bytes. */
const YIELD_ENTRIES = 256;
const YIELD_BYTES = 16 << 20;
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

/** Told of every host change a hand-over makes, before it makes it, so a crash can be undone. */
export interface HandOverJournal {
  /** Before creating directory `relative` beneath `root` (an outputs.under root): a staging dir (`.stockade-handover-*`) or a directory on the way to an output. */
  creating(entry: { root: string; relative: string; kind: 'staging' | 'directory' }): void;
  /** Before renaming a staged output into place at `relative` beneath `root`. */
  installing(entry: { root: string; relative: string }): void;
  /** Once every output is in place (nothing to undo from then on). */
  complete(): void;
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

/** Where an entry is, as a chain of names: its path is built only when an error names it. */
interface Place {
  name: string;
  parent: Place | undefined;
  /** Bytes of the entry's full host path. */
  pathBytes: number;
}

function placeIn(parent: Place | undefined, rootBytes: number, name: string): Place {
  return { name, parent, pathBytes: (parent?.pathBytes ?? rootBytes) + 1 + Buffer.byteLength(name) };
}

function relOf(place: Place | undefined): string {
  const names: string[] = [];
  for (let p = place; p; p = p.parent) names.push(p.name);
  return names.reverse().join('/');
}

/** A path too long to read whole in a message: its start and its end. */
function shorten(path: string): string {
  return path.length <= 300 ? path : `${path.slice(0, 160)}...${path.slice(-80)}`;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A directory being copied: the entries it had when it was listed, and how far the copy is. */
interface Frame {
  place: Place | undefined;
  entries: Dirent<Buffer>[];
  next: number;
}

/** Copies one output tree from the build's private directory into a staging directory. */
class OutputCopy {
  readonly counts: Counts = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  stripped = 0;
  xattrsDropped = 0;
  /** Non-directories by inode: how many links the output holds of each. */
  private readonly links = new Map<bigint, { place: Place; nlink: number; seen: number }>();
  private dev = '';
  private readonly rootBytes: number;
  private sinceTurn = { entries: 0, bytes: 0 };

  constructor(private readonly output: string, private readonly buildUid: number, private readonly canon: OutputsPlan) {
    this.rootBytes = Buffer.byteLength(output);
  }

  private refuse(place: Place | undefined, why: string): never {
    throw new OutputRefused(`${shorten(place ? `${this.output}/${relOf(place)}` : this.output)}: ${why}`);
  }

  /** What was opened must be what was listed, made by the build, on the output's filesystem. */
  private admit(place: Place | undefined, expected: Kind, st: Stat): void {
    const kind = kindOfMode(st.mode);
    if (kind !== expected) this.refuse(place, `changed from ${expected} to ${kind} during hand-over`);
    if (st.uid !== this.buildUid) this.refuse(place, `owned by uid ${st.uid}, not by the build user (uid ${this.buildUid})`);
    if (st.dev !== this.dev) this.refuse(place, 'on another filesystem than the output');
    if ((st.mode & SPECIAL_BITS) !== 0) this.stripped++;
    if (kind !== 'directory' && st.nlink > 1) {
      const seen = this.links.get(st.ino);
      if (seen) seen.seen++;
      else this.links.set(st.ino, { place: place!, nlink: st.nlink, seen: 1 });
    }
  }

  /** The canonical owner, mode, no xattrs, and mtime, in that order (chown would clear setuid bits). */
  private finish(fd: number, mode: number): void {
    stripXattrs(fd);
    fchown(fd, this.canon.owner.uid, this.canon.owner.gid);
    fchmod(fd, mode);
    futimens(fd, this.canon.mtime);
  }

  /** Gives the event loop a turn once enough was done since the last one. */
  private async pace(entries: number, bytes: number): Promise<void> {
    this.sinceTurn.entries += entries;
    this.sinceTurn.bytes += bytes;
    if (this.sinceTurn.entries < YIELD_ENTRIES && this.sinceTurn.bytes < YIELD_BYTES) return;
    this.sinceTurn = { entries: 0, bytes: 0 };
    await nextTurn();
  }

  /** Copies the output whose private directory is open as `srcFd` into `dstFd`. */
  async copyRoot(srcFd: number, dstFd: number): Promise<void> {
    const st = fstat(srcFd);
    this.dev = st.dev;
    this.admit(undefined, 'directory', st);
    if ((st.mode & S_IWGRP_OR_OTH) !== 0) this.refuse(undefined, `group- or world-writable (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}): someone else could have written into it; rejected, as guix-daemon does`);
    const src = new DirChain(srcFd);
    const dst = new DirChain(dstFd);
    try {
      const frames: Frame[] = [{ place: undefined, entries: entries(srcFd), next: 0 }];
      this.counts.directories++;
      while (frames.length) {
        const frame = frames[frames.length - 1];
        if (frame.next === frame.entries.length) {
          frames.pop();
          // A directory is finished once all it holds is, or writing those would change its mtime.
          if (frames.length) {
            this.finish(dst.fd(), this.canon.directoryMode);
            src.leave();
            dst.leave();
          }
          continue;
        }
        const entry = frame.entries[frame.next++];
        const child = await this.copyEntry(entry, frame.place, src, dst);
        if (child) frames.push(child);
      }
    } finally {
      src.close();
      dst.close();
    }
    if (flistxattr(srcFd).length) this.xattrsDropped++;
    this.finish(dstFd, this.canon.directoryMode);
    for (const link of this.links.values()) {
      if (link.seen < link.nlink) this.refuse(link.place, `has ${link.nlink} hard links, ${link.nlink - link.seen} of them outside the output`);
    }
  }

  /** Copies one entry of the directory the chains are in; a directory is entered and returned, to be copied next. */
  private async copyEntry(entry: Dirent<Buffer>, parent: Place | undefined, src: DirChain, dst: DirChain): Promise<Frame | undefined> {
    const srcDir = src.fd();
    const dstDir = dst.fd();
    const name = nameOf(entry, () => (parent ? `${this.output}/${relOf(parent)}` : this.output));
    const place = placeIn(parent, this.rootBytes, name);
    if (place.pathBytes > MAX_PATH_BYTES) {
      this.refuse(place, `path longer than ${MAX_PATH_BYTES} bytes (PATH_MAX), ${src.depth + 1} levels deep: nothing could open it by name`);
    }
    const kind = kindOf(entry, srcDir, name);
    if (kind === 'directory') {
      src.enter(name, openDirAt(srcDir, name));
      const childFd = src.fd();
      this.admit(place, kind, fstat(childFd));
      if (flistxattr(childFd).length) this.xattrsDropped++;
      mkdirat(dstDir, name, 0o700);
      dst.enter(name, openDirAt(dstDir, name));
      this.counts.directories++;
      await this.pace(1, 0);
      return { place, entries: entries(src.fd()), next: 0 };
    }
    if (kind === 'regular file') {
      const fileFd = openat(srcDir, name, READ_FLAGS);
      try {
        const st = fstat(fileFd);
        this.admit(place, kind, st);
        if (flistxattr(fileFd).length) this.xattrsDropped++;
        const newFd = openat(dstDir, name, CREATE_FLAGS, 0o600);
        try {
          // In slices, so a large file does not hold the event loop either; the fds stay the same.
          for (let n; (n = sendfile(newFd, fileFd, YIELD_BYTES)) > 0; ) {
            this.counts.bytes += n;
            await this.pace(0, n);
          }
          this.finish(newFd, st.mode & S_IXUSR ? this.canon.executableMode : this.canon.fileMode);
        } finally {
          close(newFd);
        }
      } finally {
        close(fileFd);
      }
      this.counts.files++;
    } else if (kind === 'symlink') {
      // A symlink is data: its target is copied, never followed. Linux keeps no user xattrs or ACLs on symlinks.
      this.admit(place, kind, statx(srcDir, name, AT_SYMLINK_NOFOLLOW));
      symlinkat(readlinkat(srcDir, name), dstDir, name);
      fchownat(dstDir, name, this.canon.owner.uid, this.canon.owner.gid, AT_SYMLINK_NOFOLLOW);
      utimensat(dstDir, name, this.canon.mtime, AT_SYMLINK_NOFOLLOW);
      this.counts.symlinks++;
    } else {
      this.refuse(place, `is a ${kind}: an output may hold only regular files, directories and symlinks`);
    }
    await this.pace(1, 0);
    return undefined;
  }
}

/** Runs every step, even after one failed; throws the first failure. */
function allOf(steps: (() => void)[]): void {
  let failure: unknown;
  for (const step of steps) {
    try {
      step();
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
}

/** The directory an output goes in, open, and the directories the hand-over made on the way. */
interface Parent {
  fd: number;
  /** Directories this hand-over created, outermost first: removed again if it fails. */
  made: { dirFd: number; name: string }[];
  /** Every fd opened on the way, the parent's included. */
  fds: number[];
}

/**
 * Opens the directory `dir`, making what is missing of it one directory at a time through fds
 * (root-owned 0755, as the store's are); what it made is remembered to be removed on failure.
 */
function openParent(dir: string): Parent {
  const parts = dir.split('/').filter(Boolean);
  const parent: Parent = { fd: -1, made: [], fds: [] };
  try {
    let existing = parts.length;
    for (;;) {
      try {
        parent.fds.push(openDirAt(AT_FDCWD, `/${parts.slice(0, existing).join('/')}`));
        break;
      } catch (err) {
        if (!(err instanceof SyscallError && err.errno === ERRNO.ENOENT && existing > 0)) throw err;
        existing--;
      }
    }
    for (const name of parts.slice(existing)) {
      const dirFd = parent.fds[parent.fds.length - 1];
      let made = true;
      try {
        mkdirat(dirFd, name, 0o755);
      } catch (err) {
        // Made by someone else meanwhile: used, and not ours to remove.
        if (!(err instanceof SyscallError && err.errno === ERRNO.EEXIST)) throw err;
        made = false;
      }
      if (made) parent.made.push({ dirFd, name });
      const fd = openDirAt(dirFd, name);
      parent.fds.push(fd);
      if (made) {
        fchown(fd, 0, 0);
        fchmod(fd, 0o755);
      }
    }
  } catch (err) {
    removeMade(parent);
    throw err;
  }
  parent.fd = parent.fds[parent.fds.length - 1];
  return parent;
}

/** Removes the directories `openParent` made, innermost first (if still empty), and closes its fds. */
function removeMade(parent: Parent): void {
  allOf([
    ...[...parent.made].reverse().map(({ dirFd, name }) => () => {
      try {
        unlinkat(dirFd, name, AT_REMOVEDIR);
      } catch (err) {
        // Something else was put there meanwhile, or removed it: then it is not ours alone.
        if (!(err instanceof SyscallError && (err.errno === ERRNO.ENOTEMPTY || err.errno === ERRNO.ENOENT))) throw err;
      }
    }),
    ...parent.fds.map((fd) => () => close(fd)),
  ]);
  parent.fds = [];
}

interface Staged {
  output: string;
  parent: Parent;
  stagingName: string;
}

/** A root-owned 0700 directory next to the output's destination, without inherited ACLs. */
function createStaging(output: string): Staged {
  const parent = openParent(dirname(output));
  const stagingName = `.stockade-handover-${basename(output)}-${randomBytes(6).toString('hex')}`;
  try {
    mkdirat(parent.fd, stagingName, 0o700);
    withFd(openDirAt(parent.fd, stagingName), (fd) => {
      fchown(fd, 0, 0);
      fchmod(fd, 0o700);
      // A default ACL inherited from the parent would be inherited again by every copy.
      stripXattrs(fd);
      mkdirat(fd, 'out', 0o700);
    });
  } catch (err) {
    allOf([() => removeTreeAt(parent.fd, stagingName), () => removeMade(parent)]);
    throw err;
  }
  return { output, parent, stagingName };
}

/**
 * Hands every output over (sources: the build's private output directories, in the order of
 * `outputs`). Call only once no process of the build is left. All or nothing: on any refusal
 * or error nothing is installed, no directory it made is left, and the error is thrown.
 */
export async function handOver(outputs: string[], sources: string[], buildUid: number, canon: OutputsPlan, _journal?: HandOverJournal): Promise<HandOverReport> {
  const report: HandOverReport = { outputs: [], stripped: 0, xattrsDropped: 0 };
  const staged: Staged[] = [];
  const installed: Staged[] = [];
  let complete = false;
  try {
    for (const [i, output] of outputs.entries()) {
      const stage = createStaging(output);
      staged.push(stage);
      const copy = new OutputCopy(output, buildUid, canon);
      const srcFd = openDirAt(AT_FDCWD, sources[i]);
      try {
        const dstFd = withFd(openDirAt(stage.parent.fd, stage.stagingName), (stagingFd) => openDirAt(stagingFd, 'out'));
        try {
          await copy.copyRoot(srcFd, dstFd);
        } finally {
          close(dstFd);
        }
      } finally {
        close(srcFd);
      }
      report.outputs.push({ path: output, ...copy.counts });
      report.stripped += copy.stripped;
      report.xattrsDropped += copy.xattrsDropped;
    }
    for (const stage of staged) {
      withFd(openDirAt(stage.parent.fd, stage.stagingName), (stagingFd) => renameat2(stagingFd, 'out', stage.parent.fd, basename(stage.output), RENAME_NOREPLACE));
      installed.push(stage);
    }
    complete = true;
    return report;
  } finally {
    allOf([
      ...(complete ? [] : installed.map((stage) => () => removeTreeAt(stage.parent.fd, basename(stage.output)))),
      ...staged.map((stage) => () => removeTreeAt(stage.parent.fd, stage.stagingName)),
      // Innermost first: a later output's parents may lie inside an earlier one's.
      ...[...staged].reverse().map((stage) => () => (complete ? allOf(stage.parent.fds.map((fd) => () => close(fd))) : removeMade(stage.parent))),
    ]);
  }
}

/**
 * A failed build's tree kept for inspection (--keep-failed), made safe in place: every entry
 * owned by `owner`, no setuid/setgid/sticky bit, nothing group- or world-writable, no xattrs
 * (ACLs), and FIFOs, sockets and devices removed. Call only once no process of the build is
 * left. Throws, leaving the tree unsafe, if it holds a path longer than PATH_MAX: the caller
 * must then remove it.
 */
export function secureKeptTree(path: string, owner: OutputsPlan['owner']): void {
  withFd(openDirAt(AT_FDCWD, path), (rootFd) => {
    const chain = new DirChain(rootFd);
    const rootBytes = Buffer.byteLength(path);
    try {
      const frames: Frame[] = [{ place: undefined, entries: entries(rootFd), next: 0 }];
      while (frames.length) {
        const frame = frames[frames.length - 1];
        if (frame.next === frame.entries.length) {
          frames.pop();
          if (frames.length) {
            secureOpened(chain.fd(), owner);
            chain.leave();
          }
          continue;
        }
        const entry = frame.entries[frame.next++];
        // A name that is not UTF-8 cannot be reached through libc here; it is left as it is, in the root-only directory.
        const name = entry.name.toString('utf8');
        if (!Buffer.from(name, 'utf8').equals(entry.name)) continue;
        const dirFd = chain.fd();
        const kind = kindOf(entry, dirFd, name);
        if (kind === 'directory') {
          const place = placeIn(frame.place, rootBytes, name);
          if (place.pathBytes > MAX_PATH_BYTES) throw new Error(`${shorten(`${path}/${relOf(place)}`)}: path longer than ${MAX_PATH_BYTES} bytes (PATH_MAX), ${chain.depth + 1} levels deep`);
          chain.enter(name, openDirAt(dirFd, name));
          frames.push({ place, entries: entries(chain.fd()), next: 0 });
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
    } finally {
      chain.close();
    }
    secureOpened(rootFd, owner);
  });
}

function secureOpened(fd: number, owner: OutputsPlan['owner']): void {
  const st = fstat(fd);
  stripXattrs(fd);
  fchown(fd, owner.uid, owner.gid);
  fchmod(fd, st.mode & 0o755);
}
