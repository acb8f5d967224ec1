import type { ProbeCheck } from '../check.js';
import { effectiveMounts } from './util.js';

export const check: ProbeCheck = {
  id: 'FS-10', kind: 'probe', property: 'the mount table equals the Plan', proves: ['filesystem', 'devices', 'proc'],
  evaluate: ({ plan, obs }) => ({
    expected: ['/ tmpfs', ...effectiveMounts(plan).map((m) => `${m.target} ${m.type === 'bind' ? 'bind' : m.type}`)],
    // A bind mounts a subtree or a file of another file system; a fresh mount its root.
    observed: obs.mounts.map((m) => `${m.target} ${m.root === '/' ? m.fstype : 'bind'}`),
  }),
};
