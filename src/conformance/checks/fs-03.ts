import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'FS-03', kind: 'probe', property: 'inputs are read-only', proves: ['filesystem.inputs.under', 'build spec inputs'],
  evaluate: ({ plan, obs }) => {
    const inputs = plan.mounts.filter((m) => m.role === 'input').map((m) => m.target);
    if (!inputs.length) return { skip: 'the probe build has no inputs' };
    return {
      expected: Object.fromEntries(inputs.map((i) => [i, 'EROFS'])),
      observed: Object.fromEntries(inputs.map((i) => [i, obs.writable[i]])),
    };
  },
};
