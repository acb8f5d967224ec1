import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'FS-05', kind: 'probe', property: "the build directory is at the policy's path, writable, and the cwd", proves: ['filesystem.build_dir'],
  evaluate: ({ plan, obs }) => ({
    expected: { cwd: plan.build.dir, createFile: 'ok' },
    observed: { cwd: obs.cwd, createFile: obs.writable[plan.build.dir] },
  }),
};
