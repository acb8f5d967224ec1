// /dev symlinks (fd, stdio, ptmx), made through an fd of the new root's /dev; the device binds,
// devpts and shm are mounts of the Plan.
import { ERRNO, OPEN_FLAGS } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { close } from '../ffi/libc.js';
import { symlinkat } from '../ffi/fsat.js';
import { componentsOf, openBeneath } from '../ffi/resolve.js';
import type { Plan } from '../plan/types.js';

export function createDeviceLinks(plan: Plan, rootFd: number): void {
  const links = plan.devices.filter((x) => x.kind === 'symlink');
  if (!links.length) return;
  const dev = openBeneath(rootFd, 'dev', OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_DIRECTORY, { label: '/dev' });
  try {
    for (const d of links) {
      if (componentsOf(d.name).length !== 1) throw new Error(`/dev link ${d.name}: not a single name`);
      try {
        symlinkat(d.source, dev, d.name);
      } catch (err) {
        // Already there (a mount of the Plan, say): kept, as before.
        if (!(err instanceof SyscallError && err.errno === ERRNO.EEXIST)) throw err;
      }
    }
  } finally {
    close(dev);
  }
}
