// Output hand-over, as guix-daemon and Nix do it but before anything is exposed (CVE-2024-52867):
// the builder made each output itself, a regular file, a directory or a symlink, in a private
// directory of the build's bound where the outputs go (builddir.ts); a declared output it did not
// make fails the build with guix-daemon's message, and nothing else it made there is taken. Once
// every process of the build is gone, each declared output is copied through fds (O_NOFOLLOW,
// fstat on what was opened) into a fresh root-owned 0700 staging directory next to its
// destination, which the build never saw, as fresh inodes (an fd kept on a build's file reaches
// nothing installed: CVE-2024-27297), so no symlink planted by a build can redirect a write
// (CVE-2026-39860). There every entry gets the canonical owner, mode and mtime and loses its
// xattrs (a symlink is recreated, never followed); then the outputs are renamed into place, all
// or none. A kept failed build tree is made safe in place the same way.
//
// Where an output goes is never looked up by host path: its destination is resolved beneath an
// fd of its outputs.under root, one component at a time through the fd of its parent, and any
// symlink on the way refuses it, whenever it appeared (another build's output can hold one).
// Missing directories are made through those fds; the build's private directories are opened
// beneath the build directory's fd. The same walk checks the destinations when a build starts.
// A journal, if given, is told of each directory and rename before it is made, so a crash can
// be undone.
//
// Permissions, as guix-daemon's registerOutputs and canonicalisePathMetaData do it: a directory
// output that is group- or world-writable is rejected (someone else could have written
// into it); entries below it are normalised (0444/0555), whatever their mode was.
//
// Files are copied extent by extent (SEEK_DATA/SEEK_HOLE), so holes stay holes; the outputs'
// apparent bytes can be capped, checked before each file is copied.
//
// Walks are iterative and hold a bounded number of fds (DirChain), whatever the depth. Every
// path of an output must fit in PATH_MAX, so it can be opened by name; a deeper output is refused.
// The copy yields to the event loop every so many entries and bytes (the daemon runs many builds
// in one process); the fds it holds stay the same across turns, nothing is resolved by path again.
import { readdirSync, type Dirent } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ERRNO, FILE_TYPE, OPEN_FLAGS } from '../ffi/arch.js';
import {
  AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, DirChain, RENAME_NOREPLACE, SEEK_DATA, SEEK_HOLE, SEEK_SET, copyFileRange, fchmod, fchown, fchownat, flistxattr, fremovexattr,
  fstat, ftruncate, futimens, lseek, mkdirat, openDirAt, openat, readlinkat, removeTreeAt, renameat2, sendfile, statx, symlinkat, unlinkat, utimensat, type Stat,
} from '../ffi/fsat.js';
import { SyscallError, quote } from '../ffi/errors.js';
import { close } from '../ffi/libc.js';
import { PathRefused, componentsOf, isMissing, openBeneath, openRoot, splitUnderRoot } from '../ffi/resolve.js';
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
  /** Per output; `bytes` is the apparent size of its regular files (holes included). */
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

/** A declared output the builder never made; the message is guix-daemon's. */
export class OutputMissing extends Error {
  constructor(build: string, output: string) {
    super(`builder for \`${build}' failed to produce output path \`${output}'`);
    this.name = 'OutputMissing';
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

/** withFd for work that takes turns of the event loop: the fd is closed once it is done. */
async function withFdAwaited<T>(fd: number, use: (fd: number) => Promise<T>): Promise<T> {
  try {
    return await use(fd);
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

/** Where an output goes: beneath which outputs.under root, and the path under it. */
interface Destination {
  output: string;
  root: string;
  /** The output relative to `root`. */
  relative: string;
  /** The directories from `root` down to the one the output goes in. */
  parents: string[];
  /** The output's own name in that directory. */
  name: string;
}

function destinationOf(output: string, outputsUnder: readonly string[]): Destination {
  const split = splitUnderRoot(output, outputsUnder);
  if (!split) throw new OutputRefused(`output ${output}: not under filesystem.outputs.under (${outputsUnder.join(', ') || 'nothing allowed'})`);
  let parts: string[];
  try {
    parts = componentsOf(split.relative);
  } catch (err) {
    throw new OutputRefused(`output ${output}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!parts.length) throw new OutputRefused(`output ${output}: is its outputs.under root itself; an output lies beneath one`);
  return { output, root: split.root, relative: parts.join('/'), parents: parts.slice(0, -1), name: parts[parts.length - 1] };
}

/** The outputs.under roots a hand-over or check uses, each opened once (O_PATH, as the admin set it). */
class Roots {
  private readonly fds = new Map<string, number>();

  fd(dest: Destination): number {
    let fd = this.fds.get(dest.root);
    if (fd === undefined) {
      try {
        fd = openRoot(dest.root);
      } catch (err) {
        throw new Error(`output ${dest.output}: its outputs.under root ${dest.root} cannot be opened: ${err instanceof Error ? err.message : String(err)}`);
      }
      this.fds.set(dest.root, fd);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.fds.values()) close(fd);
    this.fds.clear();
  }
}

/**
 * Opens directory `parents[i]` of `dest` in `dirFd` (the fd of the one before it), following
 * no symlink; undefined when it is missing. A symlink or a non-directory refuses the output.
 */
function openOnTheWay(dirFd: number, dest: Destination, i: number): number | undefined {
  const shown = () => `${dest.root === '/' ? '' : dest.root}/${dest.parents.slice(0, i + 1).join('/')}`;
  try {
    return openBeneath(dirFd, dest.parents[i], OPEN_FLAGS.O_DIRECTORY);
  } catch (err) {
    if (isMissing(err)) return undefined;
    if (err instanceof PathRefused) {
      let target = '?';
      try {
        target = readlinkat(dirFd, dest.parents[i]);
      } catch {
        // Gone meanwhile: the component is still named.
      }
      throw new OutputRefused(`output ${dest.output}: component ${shown()} is a symlink (to ${quote(target)}); no symlink is followed on the way to an output`);
    }
    if (err instanceof SyscallError && err.errno === ERRNO.ENOTDIR) throw new OutputRefused(`output ${dest.output}: component ${shown()} is not a directory`);
    throw err;
  }
}

/**
 * At the start of a build: each output lies beneath an outputs.under root with no symlink on
 * the way (resolved as the hand-over will), and does not exist yet (each is created by its
 * hand-over alone). Missing directories on the way are fine; the hand-over makes them.
 */
export function checkOutputsFree(outputs: readonly string[], outputsUnder: readonly string[]): void {
  const roots = new Roots();
  try {
    for (const output of outputs) {
      const dest = destinationOf(output, outputsUnder);
      let dirFd = roots.fd(dest);
      const rootFd = dirFd;
      try {
        let missing = false;
        for (let i = 0; i < dest.parents.length && !missing; i++) {
          const next = openOnTheWay(dirFd, dest, i);
          if (next === undefined) missing = true;
          else {
            if (dirFd !== rootFd) close(dirFd);
            dirFd = next;
          }
        }
        if (!missing && exists(dirFd, dest.name)) throw new Error(`output ${output} already exists`);
      } finally {
        if (dirFd !== rootFd) close(dirFd);
      }
    }
  } finally {
    roots.close();
  }
}

/** Whether `name` is in the directory `dirFd`, as anything (a symlink included). */
function exists(dirFd: number, name: string): boolean {
  try {
    statx(dirFd, name, AT_SYMLINK_NOFOLLOW);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
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

/** copy_file_range errors that mean "not between these two files": sendfile is used instead. */
const COPY_RANGE_UNSUPPORTED = new Set<number>([ERRNO.EXDEV, ERRNO.EINVAL, ERRNO.ENOSYS, ERRNO.EOPNOTSUPP]);

/** lseek for SEEK_DATA/SEEK_HOLE; undefined past the end (ENXIO). */
function seek(fd: number, offset: number, whence: number): number | undefined {
  try {
    return lseek(fd, offset, whence);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ERRNO.ENXIO) return undefined;
    throw err;
  }
}

/** The apparent bytes every output of one hand-over may hold together (null: any). */
class ByteBudget {
  private used = 0;

  constructor(private readonly max: number | null) {}

  /** Counts a file of `bytes` in, before it is copied; refuses the outputs once they exceed the cap. */
  take(bytes: number): void {
    this.used += bytes;
    if (this.max !== null && this.used > this.max) throw new OutputRefused(`outputs exceed limits.output_bytes (${this.max} bytes)`);
  }
}

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
  private readonly links = new Map<bigint, { place: Place | undefined; nlink: number; seen: number }>();
  private dev = '';
  private readonly rootBytes: number;
  private sinceTurn = { entries: 0, bytes: 0 };

  constructor(private readonly output: string, private readonly buildUid: number, private readonly canon: OutputsPlan, private readonly budget: ByteBudget) {
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
      else this.links.set(st.ino, { place, nlink: st.nlink, seen: 1 });
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

  /**
   * Copies the output `name` of the directory `srcDirFd` as `dstName` into `dstDirFd`, by its
   * kind. The builder must have made it; the caller has checked it did.
   */
  async copyOutput(srcDirFd: number, name: string, dstDirFd: number, dstName: string): Promise<void> {
    const st = statx(srcDirFd, name, AT_SYMLINK_NOFOLLOW);
    this.dev = st.dev;
    const kind = kindOfMode(st.mode);
    if (kind === 'directory') {
      await withFdAwaited(openDirAt(srcDirFd, name), async (srcFd) => {
        mkdirat(dstDirFd, dstName, 0o700);
        await withFdAwaited(openDirAt(dstDirFd, dstName), (dstFd) => this.copyRoot(srcFd, dstFd));
      });
    } else if (kind === 'regular file') await this.copyFile(srcDirFd, name, undefined, dstDirFd, dstName);
    else if (kind === 'symlink') this.copySymlink(srcDirFd, name, undefined, dstDirFd, dstName);
    else this.refuse(undefined, `is a ${kind}: an output is a regular file, a directory or a symlink`);
    for (const link of this.links.values()) {
      if (link.seen < link.nlink) this.refuse(link.place, `has ${link.nlink} hard links, ${link.nlink - link.seen} of them outside the output`);
    }
  }

  /** Copies the directory output open as `srcFd` into `dstFd`. */
  private async copyRoot(srcFd: number, dstFd: number): Promise<void> {
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
  }

  /**
   * Copies the first `size` bytes of `inFd` to the same offsets of `outFd`, data extents only:
   * a hole stays a hole. In slices, so a large file does not hold the event loop either; the
   * fds stay the same.
   */
  private async copyData(inFd: number, outFd: number, size: number): Promise<void> {
    let viaCopyRange = true;
    for (let at = 0; at < size; ) {
      const data = seek(inFd, at, SEEK_DATA);
      if (data === undefined || data >= size) return;
      const hole = seek(inFd, data, SEEK_HOLE);
      if (hole === undefined) return;
      const end = Math.min(hole, size);
      for (at = data; at < end; ) {
        const count = Math.min(end - at, YIELD_BYTES);
        let n: number;
        if (viaCopyRange) {
          try {
            n = copyFileRange(inFd, outFd, at, count);
          } catch (err) {
            // Across filesystems of different types, say: sendfile copies it.
            if (!(err instanceof SyscallError && COPY_RANGE_UNSUPPORTED.has(err.errno))) throw err;
            viaCopyRange = false;
            continue;
          }
        } else {
          lseek(outFd, at, SEEK_SET);
          n = sendfile(outFd, inFd, at, count);
        }
        // Shorter than it was admitted (truncated through a kept fd): the rest stays a hole.
        if (n === 0) return;
        at += n;
        await this.pace(0, n);
      }
      await this.pace(1, 0);
    }
  }

  /** Copies the regular file `name` of `srcDir` as a fresh inode `dstName` in `dstDir`. */
  private async copyFile(srcDir: number, name: string, place: Place | undefined, dstDir: number, dstName: string): Promise<void> {
    const fileFd = openat(srcDir, name, READ_FLAGS);
    try {
      const st = fstat(fileFd);
      this.admit(place, 'regular file', st);
      this.budget.take(st.size);
      if (flistxattr(fileFd).length) this.xattrsDropped++;
      const newFd = openat(dstDir, dstName, CREATE_FLAGS, 0o600);
      try {
        await this.copyData(fileFd, newFd, st.size);
        // The size it had when it was admitted: a trailing hole is made here, and nothing it grew by since is taken.
        ftruncate(newFd, st.size);
        this.counts.bytes += st.size;
        this.finish(newFd, st.mode & S_IXUSR ? this.canon.executableMode : this.canon.fileMode);
      } finally {
        close(newFd);
      }
    } finally {
      close(fileFd);
    }
    this.counts.files++;
  }

  /** A symlink is data: its target is copied, never followed. Linux keeps no user xattrs or ACLs on symlinks. */
  private copySymlink(srcDir: number, name: string, place: Place | undefined, dstDir: number, dstName: string): void {
    this.admit(place, 'symlink', statx(srcDir, name, AT_SYMLINK_NOFOLLOW));
    symlinkat(readlinkat(srcDir, name), dstDir, dstName);
    fchownat(dstDir, dstName, this.canon.owner.uid, this.canon.owner.gid, AT_SYMLINK_NOFOLLOW);
    utimensat(dstDir, dstName, this.canon.mtime, AT_SYMLINK_NOFOLLOW);
    this.counts.symlinks++;
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
    if (kind === 'regular file') await this.copyFile(srcDir, name, place, dstDir, name);
    else if (kind === 'symlink') this.copySymlink(srcDir, name, place, dstDir, name);
    else {
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

/** Told of every host change a hand-over makes, before it makes it, so a crash can be undone. */
export interface HandOverJournal {
  /** Before creating directory `relative` beneath `root` (an outputs.under root): a staging dir (`.stockade-handover-*`) or a directory on the way to an output. */
  creating(entry: { root: string; relative: string; kind: 'staging' | 'directory' }): void;
  /** Before renaming a staged output into place at `relative` beneath `root`. */
  installing(entry: { root: string; relative: string }): void;
  /** Once every output is in place (nothing to undo from then on). */
  complete(): void;
}

/** Where the builder made its outputs: where a hand-over copies from. */
export interface HandOverSources {
  /** The build directory (root-owned, out of the build's reach), open. */
  dirFd: number;
  /** Each output, in the order of the outputs: the entry `name` of the directory `dir` beneath `dirFd` (`outputs/N`; '' for `dirFd` itself). */
  from: readonly { dir: string; name: string }[];
}

export interface HandOverOptions {
  /** The policy's outputs.under roots (plan.build.outputsUnder): each output is put beneath one, through its fd. */
  outputsUnder: readonly string[];
  /** The most apparent bytes all regular files of the outputs may hold together; null or absent: no cap. */
  maxBytes?: number | null;
  /** Told of each directory made and each output installed, before it is. */
  journal?: HandOverJournal;
  /** The build, as a missing output's message names it. */
  build?: string;
}

/** The directory an output goes in, open, and the directories the hand-over made on the way. */
interface Parent {
  fd: number;
  /** Directories this hand-over created, outermost first: removed again if it fails. */
  made: { dirFd: number; name: string }[];
  /** The fds it holds: the parent's, and those of the directories `made` was made in. */
  fds: number[];
}

/**
 * Opens the directory `dest` goes in beneath its root's fd, making what is missing one
 * directory at a time through the fd of its parent (root-owned 0755, as the store's are); what
 * it made is remembered to be removed on failure. No symlink on the way is followed.
 */
function openParent(dest: Destination, rootFd: number, journal: HandOverJournal | undefined): Parent {
  const parent: Parent = { fd: -1, made: [], fds: [] };
  try {
    parent.fds.push(openBeneath(rootFd, '', OPEN_FLAGS.O_DIRECTORY));
    for (const [i, name] of dest.parents.entries()) {
      const dirFd = parent.fds[parent.fds.length - 1];
      // Only a directory something was made in is needed again (to remove it): the others are let go.
      const letGo = () => {
        if (parent.made[parent.made.length - 1]?.dirFd !== dirFd) close(parent.fds.pop()!);
      };
      const found = openOnTheWay(dirFd, dest, i);
      if (found !== undefined) {
        letGo();
        parent.fds.push(found);
        continue;
      }
      journal?.creating({ root: dest.root, relative: dest.parents.slice(0, i + 1).join('/'), kind: 'directory' });
      let made = true;
      try {
        mkdirat(dirFd, name, 0o755);
      } catch (err) {
        // Made by someone else meanwhile: used, and not ours to remove.
        if (!(err instanceof SyscallError && err.errno === ERRNO.EEXIST)) throw err;
        made = false;
      }
      if (made) parent.made.push({ dirFd, name });
      const fd = openOnTheWay(dirFd, dest, i);
      if (fd === undefined) throw new OutputRefused(`output ${dest.output}: directory ${dest.parents.slice(0, i + 1).join('/')} beneath ${dest.root} vanished as it was made`);
      letGo();
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
  dest: Destination;
  parent: Parent;
  stagingName: string;
}

/**
 * A root-owned 0700 directory next to the output's destination, without inherited ACLs, where
 * the output is copied as `out`. Its name holds no part of the output's, so it fits in NAME_MAX
 * whatever the output is called.
 */
function createStaging(dest: Destination, rootFd: number, journal: HandOverJournal | undefined): Staged {
  const parent = openParent(dest, rootFd, journal);
  const stagingName = `.stockade-handover-${randomBytes(8).toString('hex')}`;
  let made = false;
  try {
    journal?.creating({ root: dest.root, relative: [...dest.parents, stagingName].join('/'), kind: 'staging' });
    mkdirat(parent.fd, stagingName, 0o700);
    made = true;
    withFd(openDirAt(parent.fd, stagingName), (fd) => {
      fchown(fd, 0, 0);
      fchmod(fd, 0o700);
      // A default ACL inherited from the parent would be inherited again by every copy.
      stripXattrs(fd);
    });
  } catch (err) {
    allOf([...(made ? [() => removeTreeAt(parent.fd, stagingName)] : []), () => removeMade(parent)]);
    throw err;
  }
  return { dest, parent, stagingName };
}

/**
 * Hands every output over, from where the builder made it (`sources`, in the order of
 * `outputs`), each to its destination beneath its outputs.under root. Call only once no process
 * of the build is left. All or nothing: on any refusal or error nothing is installed, no
 * directory it made is left, and the error is thrown; OutputMissing first if the builder did
 * not make one of them.
 */
export async function handOver(outputs: readonly string[], sources: HandOverSources, buildUid: number, canon: OutputsPlan, options: HandOverOptions): Promise<HandOverReport> {
  const { journal } = options;
  const report: HandOverReport = { outputs: [], stripped: 0, xattrsDropped: 0 };
  const budget = new ByteBudget(options.maxBytes ?? null);
  const roots = new Roots();
  const staged: Staged[] = [];
  const installed: Staged[] = [];
  let complete = false;
  try {
    if (sources.from.length !== outputs.length) throw new Error(`${outputs.length} outputs but ${sources.from.length} sources`);
    const destinations = outputs.map((output) => destinationOf(output, options.outputsUnder));
    const srcDirs = new Map<string, number>();
    const srcDirOf = (i: number) => {
      const { dir } = sources.from[i];
      let fd = srcDirs.get(dir);
      if (fd === undefined) {
        fd = openBeneath(sources.dirFd, dir, OPEN_FLAGS.O_DIRECTORY, { label: `the directory output ${outputs[i]} was made in` });
        srcDirs.set(dir, fd);
      }
      return fd;
    };
    try {
      // Before anything is made: a missing output is the build's failure, named as guix-daemon names it.
      for (const [i, output] of outputs.entries()) if (!exists(srcDirOf(i), sources.from[i].name)) throw new OutputMissing(options.build ?? 'the build', output);
      for (const [i, dest] of destinations.entries()) {
        const stage = createStaging(dest, roots.fd(dest), journal);
        staged.push(stage);
        const copy = new OutputCopy(dest.output, buildUid, canon, budget);
        await withFdAwaited(openDirAt(stage.parent.fd, stage.stagingName), (stagingFd) => copy.copyOutput(srcDirOf(i), sources.from[i].name, stagingFd, 'out'));
        report.outputs.push({ path: dest.output, ...copy.counts });
        report.stripped += copy.stripped;
        report.xattrsDropped += copy.xattrsDropped;
      }
    } finally {
      allOf([...srcDirs.values()].map((fd) => () => close(fd)));
    }
    for (const stage of staged) {
      journal?.installing({ root: stage.dest.root, relative: stage.dest.relative });
      withFd(openDirAt(stage.parent.fd, stage.stagingName), (stagingFd) => renameat2(stagingFd, 'out', stage.parent.fd, stage.dest.name, RENAME_NOREPLACE));
      installed.push(stage);
    }
    journal?.complete();
    complete = true;
    return report;
  } finally {
    allOf([
      ...(complete ? [] : installed.map((stage) => () => removeTreeAt(stage.parent.fd, stage.dest.name))),
      ...staged.map((stage) => () => removeTreeAt(stage.parent.fd, stage.stagingName)),
      // Innermost first: a later output's parents may lie inside an earlier one's.
      ...[...staged].reverse().map((stage) => () => (complete ? allOf(stage.parent.fds.map((fd) => () => close(fd))) : removeMade(stage.parent))),
      () => roots.close(),
    ]);
  }
}

/**
 * A failed build's tree kept for inspection (--keep-failed), open as `dirFd` (`path` is for
 * messages), made safe in place: every entry
 * owned by `owner`, no setuid/setgid/sticky bit, nothing group- or world-writable, no xattrs
 * (ACLs), and FIFOs, sockets and devices removed. Call only once no process of the build is
 * left. Throws, leaving the tree unsafe, if it holds a path longer than PATH_MAX: the caller
 * must then remove it.
 */
export function secureKeptTree(dirFd: number, path: string, owner: OutputsPlan['owner']): void {
  withFd(openBeneath(dirFd, '', OPEN_FLAGS.O_DIRECTORY), (rootFd) => {
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
