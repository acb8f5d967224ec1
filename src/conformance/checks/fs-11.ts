import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'FS-11', kind: 'probe', property: 'the build can make each declared output (and other entries) in the directory the outputs go in', proves: ['filesystem.outputs.under', 'build spec outputs'],
  evaluate: ({ plan, obs }) => {
    const outputs = plan.build.outputs;
    if (!outputs.length) return { skip: 'the policy allows no outputs' };
    const dirs = plan.mounts.filter((m) => m.role === 'outputs-dir').map((m) => m.target);
    return {
      expected: { made: Object.fromEntries(outputs.map((o) => [o, 'ok'])), createFileInDir: Object.fromEntries(dirs.map((d) => [d, 'ok'])) },
      observed: { made: Object.fromEntries(outputs.map((o) => [o, obs.outputsMade[o]])), createFileInDir: Object.fromEntries(dirs.map((d) => [d, obs.writable[d]])) },
    };
  },
};
