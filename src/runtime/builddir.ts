// The host build directory, as guix-daemon makes it since CVE-2021-27851 and CVE-2024-38531:
// a root-owned 0700 directory `guix-build-NAME.drv-N` holding `top`, owned by the build user,
// which alone is bound into the sandbox. No other local user can reach into a running build,
// and the builder cannot open its directory to others (it cannot chmod the parent).
// Outputs are written there too (`outputs/N`, owned by the build user), and handed over
// only once the build is over (outputs.ts), through an fd of the directory held from its
// creation: nothing of it is looked up by host path again.
import { join } from 'node:path';
import { AT_FDCWD, ERRNO, OPEN_FLAGS } from '../ffi/arch.js';
import { fchmod, fchown, mkdirat, openDirAt, openat, removeTree } from '../ffi/fsat.js';
import { SyscallError } from '../ffi/errors.js';
import { close } from '../ffi/libc.js';

export interface BuildDir {
  /** Host path of the root-owned 0700 directory. */
  path: string;
  /** Host path of `top`, owned by the build user: what the sandbox sees as its build dir. */
  top: string;
  /** Host path of the (root-owned, empty) mount point of the sandbox's new root. */
  chroot: string;
  /** Host paths where the build writes its outputs, in the order of the Plan's outputs. */
  outputs: string[];
  /** The directory itself, open since it was made (closed by removeBuildDir or closeBuildDir). */
  fd: number;
  /** The same outputs as `outputs`, relative to `fd` (`outputs/N`). */
  outputsBeneath: string[];
}

const MAX_TRIES = 10000;

export function createBuildDir(parent: string, nameTemplate: string, uid: number, gid: number, outputCount = 0): BuildDir {
  const parentFd = openat(AT_FDCWD, parent, OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_CLOEXEC);
  try {
    for (let n = 0; n < MAX_TRIES; n++) {
      const name = nameTemplate.replace('{n}', String(n));
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
        mkdirat(dirFd, 'chroot', 0o700);
        mkdirat(dirFd, 'outputs', 0o700);
        const outputsFd = openDirAt(dirFd, 'outputs');
        try {
          fchmod(outputsFd, 0o700);
          for (let i = 0; i < outputCount; i++) makeOwnedDir(outputsFd, String(i), uid, gid);
        } finally {
          close(outputsFd);
        }
      } catch (err) {
        close(dirFd);
        removeTree(join(parent, name));
        throw err;
      }
      const path = join(parent, name);
      const outputsBeneath = Array.from({ length: outputCount }, (_, i) => `outputs/${i}`);
      return { path, top: join(path, 'top'), chroot: join(path, 'chroot'), outputs: outputsBeneath.map((o) => join(path, o)), fd: dirFd, outputsBeneath };
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

export function removeBuildDir(dir: BuildDir): void {
  closeBuildDir(dir);
  removeTree(dir.path);
}

/** Lets go of the directory's fd, leaving the directory (a kept failed build). */
export function closeBuildDir(dir: BuildDir): void {
  if (dir.fd < 0) return;
  close(dir.fd);
  dir.fd = -1;
}
