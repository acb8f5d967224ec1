import type { ProbeCheck } from '../check.js';
import { effectiveMounts } from './util.js';

export const check: ProbeCheck = {
  id: 'FS-10', kind: 'probe', property: 'the mount table equals the Plan', proves: ['filesystem', 'devices', 'proc'],
  // Sorted: mountinfo lists mounts by id, and bind sources get theirs when init clones them,
  // before the root is mounted; the mounts' stacking is the Plan's whatever their ids.
  evaluate: ({ plan, obs }) => ({
    expected: ['/ tmpfs', ...effectiveMounts(plan).map((m) => `${m.target} ${m.type === 'bind' ? 'bind' : m.type}`)].sort(),
    // A bind mounts a subtree or a file of another file system; a fresh mount its root.
    observed: obs.mounts.map((m) => `${m.target} ${m.root === '/' ? m.fstype : 'bind'}`).sort(),
  }),
};
