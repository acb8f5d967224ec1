import { existsSync, statSync } from 'node:fs';
import type { ProbeCheck } from '../check.js';
import { effectiveMounts } from './util.js';

function rdev(path: string): string {
  const dev = statSync(path).rdev;
  return `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
}

export const check: ProbeCheck = {
  id: 'DEV-01', kind: 'probe', property: 'exactly the declared device set, and nothing else from the host', proves: ['devices'],
  evaluate: ({ plan, obs }) => {
    const expected: Record<string, string> = {};
    for (const d of plan.devices) {
      if (d.kind === 'symlink') expected[d.name] = `symlink -> ${d.source}`;
      else if (!d.optional || existsSync(d.source)) expected[d.name] = `${statSync(d.source).isBlockDevice() ? 'block' : 'char'} ${rdev(d.source)}`;
    }
    // Directories under /dev that the Plan mounts (pts, shm…).
    for (const m of effectiveMounts(plan)) {
      if (m.target.startsWith('/dev/') && m.role !== 'device') expected[m.target.slice('/dev/'.length)] = 'dir';
    }
    const observed: Record<string, string> = {};
    for (const e of obs.devices) {
      observed[e.name] = e.type === 'symlink' ? `symlink -> ${e.target}` : e.type === 'char' || e.type === 'block' ? `${e.type} ${e.rdev}` : e.type;
    }
    const sorted = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
    return { expected: sorted(expected), observed: sorted(observed) };
  },
};
