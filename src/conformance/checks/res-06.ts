import { totalmem } from 'node:os';
import type { ProbeCheck } from '../check.js';

const PAGE = 4096;
const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** tmpfs's size= as the kernel computes it: a percentage of RAM, or bytes rounded up to pages. */
function tmpfsBytes(size: string): number {
  const percent = /^(\d+)%$/.exec(size);
  if (percent) return Math.ceil(((totalmem() / PAGE) * Number(percent[1])) / 100) * PAGE;
  const m = /^(\d+)([kmg]?)$/i.exec(size);
  if (!m) throw new Error(`unknown tmpfs size ${size}`);
  return Math.ceil((Number(m[1]) * UNITS[m[2].toLowerCase()]) / PAGE) * PAGE;
}

export const check: ProbeCheck = {
  id: 'RES-06', kind: 'probe', property: '/tmp has its planned size', proves: ['filesystem.tmp.size'],
  evaluate: ({ plan, obs }) => {
    const size = /(?:^|,)size=([^,]+)/.exec(plan.mounts.find((m) => m.role === 'tmp')?.options ?? '')?.[1];
    if (!size) return { skip: 'the policy sets no /tmp size' };
    return { expected: tmpfsBytes(size), observed: obs.tmpSizeBytes };
  },
};
