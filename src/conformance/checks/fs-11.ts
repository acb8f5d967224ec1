import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'FS-11', kind: 'probe', property: 'outputs are writable by the build', proves: ['filesystem.outputs.under', 'build spec outputs'],
  evaluate: ({ plan, obs }) => {
    const outputs = plan.mounts.filter((m) => m.role === 'output').map((m) => m.target);
    if (!outputs.length) return { skip: 'the policy allows no outputs' };
    return {
      expected: Object.fromEntries(outputs.map((o) => [o, 'ok'])),
      observed: Object.fromEntries(outputs.map((o) => [o, obs.writable[o]])),
    };
  },
};
