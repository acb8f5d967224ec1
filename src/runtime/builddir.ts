// The host build directory, as guix-daemon makes it since CVE-2021-27851 and CVE-2024-38531:
// a root-owned 0700 directory `guix-build-NAME.drv-N` holding `top`, owned by the build user,
// which alone is bound into the sandbox. No other local user can reach into a running build,
// and the builder cannot open its directory to others (it cannot chmod the parent).
// The outputs are made there too: `outputs/N` is bound where the outputs of the Plan's Nth
// outputs directory go, 1775 root:<build group> as guix-daemon makes its chroot's store, so the
// builder can create entries in it but not remove what it did not make (the mount points of
// inputs below it). The declared names alone are handed over once the build is over
// (outputs.ts), through an fd of the directory held from its creation: nothing of it is looked
// up by host path again.
//
// With limits.build_dir_bytes, `top` is a tmpfs of that size instead, mounted in the host's
// mount namespace (the sandbox's copy of it is what init binds), inside the root-owned
// directory, so that recovery after a crash finds it with the build directory.
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import { AT_FDCWD, ERRNO, MOUNT_FLAGS as MS, OPEN_FLAGS, UMOUNT_FLAGS } from '../ffi/arch.js';
import { AT_REMOVEDIR, fchmod, fchown, mkdirat, openDirAt, openat, removeTree, renameat2, RENAME_NOREPLACE, unlinkat } from '../ffi/fsat.js';
import { SyscallError } from '../ffi/errors.js';
import { close, mount, umount2 } from '../ffi/libc.js';
import type { OutputsPlan } from '../plan/types.js';
import { handOver } from './outputs.js';

export interface BuildDir {
  /** Host path of the root-owned 0700 directory. */
  path: string;
  /** Host path of `top`, owned by the build user: what the sandbox sees as its build dir. */
  top: string;
  /** Host path of `root` (root-owned, empty): where the sandbox's new root is mounted before pivot_root. */
  newRoot: string;
  /** Host paths of the directories the builder makes its outputs in, in the order of outputDirs(plan.build.outputs). */
  outputDirs: string[];
  /** Size of the tmpfs mounted on `top` (limits.build_dir_bytes); absent: `top` is on the host's disk. */
  topBytes?: number;
  /** The directory itself, open since it was made (closed by removeBuildDir or closeBuildDir). */
  fd: number;
  /** The same directories as `outputDirs`, relative to `fd` (`outputs/N`). */
  outputDirsBeneath: string[];
}

const MAX_TRIES = 10000;

/** Makes parent/PREFIX-N for the first N not taken (guix-daemon's guix-build-NAME.drv-N). */
export function createBuildDir(parent: string, namePrefix: string, uid: number, gid: number, outputDirCount = 0, topBytes: number | null = null): BuildDir {
  const parentFd = openat(AT_FDCWD, parent, OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_CLOEXEC);
  try {
    for (let n = 0; n < MAX_TRIES; n++) {
      const name = `${namePrefix}${n}`;
      try {
        mkdirat(parentFd, name, 0o700);
      } catch (err) {
        if (err instanceof SyscallError && err.errno === ERRNO.EEXIST) continue;
        throw err;
      }
      const dirFd = openDirAt(parentFd, name);
      try {
        // mkdir's mode is filtered by the umask; set it exactly.
        fchmod(dirFd, 0o700);
        makeOwnedDir(dirFd, 'top', uid, gid);
        mkdirat(dirFd, 'root', 0o700);
        mkdirat(dirFd, 'outputs', 0o700);
        const outputsFd = openDirAt(dirFd, 'outputs');
        try {
          fchmod(outputsFd, 0o700);
          for (let i = 0; i < outputDirCount; i++) makeOutputsDir(outputsFd, String(i), gid);
        } finally {
          close(outputsFd);
        }
        if (topBytes !== null) mountTop(dirFd, topBytes, uid, gid);
      } catch (err) {
        close(dirFd);
        try {
          unmountTop(join(parent, name));
        } finally {
          removeTree(join(parent, name));
        }
        throw err;
      }
      const path = join(parent, name);
      const outputDirsBeneath = Array.from({ length: outputDirCount }, (_, i) => `outputs/${i}`);
      return {
        path,
        top: join(path, 'top'),
        newRoot: join(path, 'root'),
        outputDirs: outputDirsBeneath.map((o) => join(path, o)),
        fd: dirFd,
        outputDirsBeneath,
        ...(topBytes !== null ? { topBytes } : {}),
      };
    }
  } finally {
    close(parentFd);
  }
  throw new Error(`cannot create a build directory under ${parent}: ${MAX_TRIES} names taken`);
}

/** A 0700 directory owned by the build user, where the build alone writes. */
function makeOwnedDir(dirFd: number, name: string, uid: number, gid: number): void {
  mkdirat(dirFd, name, 0o700);
  const fd = openDirAt(dirFd, name);
  try {
    fchown(fd, uid, gid);
    fchmod(fd, 0o700);
  } finally {
    close(fd);
  }
}

/** A directory the build may create entries in, sticky, so it cannot remove root's (guix's chroot store: 1775 root:<build group>). */
function makeOutputsDir(dirFd: number, name: string, gid: number): void {
  mkdirat(dirFd, name, 0o700);
  const fd = openDirAt(dirFd, name);
  try {
    fchown(fd, 0, gid);
    fchmod(fd, 0o1775);
  } finally {
    close(fd);
  }
}

/** Bytes of tmpfs per inode allowed: empty files take no pages, yet each costs kernel memory. */
const BYTES_PER_INODE = 4096;
const MIN_INODES = 1024;

/** Mounts the tmpfs of `bytes` on `top` (beneath the open build directory), owned by the build user. */
function mountTop(dirFd: number, bytes: number, uid: number, gid: number): void {
  const inodes = Math.max(MIN_INODES, Math.floor(bytes / BYTES_PER_INODE));
  const options = `size=${bytes},nr_inodes=${inodes},mode=0700,uid=${uid},gid=${gid}`;
  // Through an fd of `top`: no name is looked up again. On a host whose / is shared, peers get
  // a copy; the unmount, propagated through the same parent, removes it with ours.
  const below = openat(dirFd, 'top', OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_CLOEXEC);
  try {
    mount('tmpfs', `/proc/self/fd/${below}`, 'tmpfs', MS.MS_NOSUID | MS.MS_NODEV, options);
  } finally {
    close(below);
  }
  // Its own mounts (none are made) must not propagate: nothing on it is anyone else's business.
  const root = openat(dirFd, 'top', OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_CLOEXEC);
  try {
    mount(null, `/proc/self/fd/${root}`, null, MS.MS_PRIVATE);
  } finally {
    close(root);
  }
}

/**
 * Unmounts a tmpfs on `top` of the build directory at `path` (a crashed build's, too); returns
 * whether there was one. The directory is root-owned 0700: no one else can change the name.
 */
export function unmountTop(path: string): boolean {
  const top = join(path, 'top');
  try {
    umount2(top, UMOUNT_FLAGS.UMOUNT_NOFOLLOW);
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    // EINVAL: not a mount point; ENOENT: never made.
    if (err.errno === ERRNO.EINVAL || err.errno === ERRNO.ENOENT) return false;
    if (err.errno !== ERRNO.EBUSY) throw err;
    // Still open somewhere (the build's processes are gone): detached, it goes with the last user.
    umount2(top, UMOUNT_FLAGS.MNT_DETACH | UMOUNT_FLAGS.UMOUNT_NOFOLLOW);
  }
  return true;
}

/** Whether the build dir's tmpfs is full (too few bytes or no inodes left): the build hit limits.build_dir_bytes. */
export function topFull(dir: BuildDir): boolean {
  if (dir.topBytes === undefined) return false;
  const fs = statfsSync(dir.top);
  // A write larger than what is left fails without using it: "full" allows for a margin.
  return fs.bavail * fs.bsize < Math.max(64 * 1024, dir.topBytes / 100) || fs.ffree === 0;
}

/**
 * For --keep-failed: the tmpfs goes with its unmount, so its tree is first copied to the host's
 * disk (at most topBytes), as an output is handed over, and takes `top`'s place.
 */
export async function keepTop(dir: BuildDir, buildUid: number, canon: OutputsPlan): Promise<void> {
  if (dir.topBytes === undefined) return;
  // The build may have opened its directory to all (hand-over refuses that); no one could
  // enter it through the root-owned parent, and the copy is made safe anyway.
  const topFd = openDirAt(dir.fd, 'top');
  try {
    fchmod(topFd, 0o700);
  } finally {
    close(topFd);
  }
  await handOver([`${dir.top}.kept`], { dirFd: dir.fd, from: [{ dir: '', name: 'top' }] }, buildUid, canon, { outputsUnder: [dir.path] });
  unmountTop(dir.path);
  unlinkat(dir.fd, 'top', AT_REMOVEDIR);
  renameat2(dir.fd, 'top.kept', dir.fd, 'top', RENAME_NOREPLACE);
}

export function removeBuildDir(dir: BuildDir): void {
  closeBuildDir(dir);
  unmountTop(dir.path);
  removeTree(dir.path);
}

/** Lets go of the directory's fd, leaving the directory (a kept failed build). */
export function closeBuildDir(dir: BuildDir): void {
  if (dir.fd < 0) return;
  close(dir.fd);
  dir.fd = -1;
}
