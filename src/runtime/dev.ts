// /dev symlinks (fd, stdio, ptmx); the device binds, devpts and shm are mounts of the Plan.
import { existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../plan/types.js';

export function createDeviceLinks(plan: Plan, root: string): void {
  for (const d of plan.devices.filter((x) => x.kind === 'symlink')) {
    const path = join(root, 'dev', d.name);
    if (!existsSync(path)) symlinkSync(d.source, path);
  }
}
