import type { Mount, Plan } from '../../plan/types.js';
import type { ProbeCheck } from '../check.js';
import { effectiveMounts } from './util.js';

/** How a Plan mount shows in mountinfo: a bind of a tmpfs build dir (limits.build_dir_bytes) binds that tmpfs's root. */
function kindOf(m: Mount, plan: Plan): string {
  if (m.role === 'build-dir' && plan.limits.buildDirBytes !== null) return 'tmpfs';
  return m.type === 'bind' ? 'bind' : m.type;
}

export const check: ProbeCheck = {
  id: 'FS-10', kind: 'probe', property: 'the mount table equals the Plan', proves: ['filesystem', 'devices', 'proc'],
  // Sorted: mountinfo lists mounts by id, and bind sources get theirs when init clones them,
  // before the root is mounted; the mounts' stacking is the Plan's whatever their ids.
  evaluate: ({ plan, obs }) => ({
    expected: ['/ tmpfs', ...effectiveMounts(plan).map((m) => `${m.target} ${kindOf(m, plan)}`)].sort(),
    // A bind mounts a subtree or a file of another file system; a fresh mount its root.
    observed: obs.mounts.map((m) => `${m.target} ${m.root === '/' ? m.fstype : 'bind'}`).sort(),
  }),
};
