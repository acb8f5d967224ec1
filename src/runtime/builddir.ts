// The host build directory, as guix-daemon makes it since CVE-2021-27851 and CVE-2024-38531:
// a root-owned 0700 directory `guix-build-NAME.drv-N` holding `top`, owned by the build user,
// which alone is bound into the sandbox. No other local user can reach into a running build,
// and the builder cannot open its directory to others (it cannot chmod the parent).
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
}

const MAX_TRIES = 10000;

export function createBuildDir(parent: string, nameTemplate: string, uid: number, gid: number): BuildDir {
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
        mkdirat(dirFd, 'top', 0o700);
        const topFd = openDirAt(dirFd, 'top');
        try {
          fchown(topFd, uid, gid);
          fchmod(topFd, 0o700);
        } finally {
          close(topFd);
        }
        mkdirat(dirFd, 'chroot', 0o700);
      } catch (err) {
        close(dirFd);
        removeTree(join(parent, name));
        throw err;
      }
      close(dirFd);
      const path = join(parent, name);
      return { path, top: join(path, 'top'), chroot: join(path, 'chroot') };
    }
  } finally {
    close(parentFd);
  }
  throw new Error(`cannot create a build directory under ${parent}: ${MAX_TRIES} names taken`);
}

export function removeBuildDir(dir: BuildDir): void {
  removeTree(dir.path);
}
