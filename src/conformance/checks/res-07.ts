import type { SandboxCheck } from '../check.js';
import { leftovers } from '../host.js';
import { scriptPlan } from '../sandbox.js';
import { STUBBORN_CHILDREN } from './res-04.js';

export const check: SandboxCheck = {
  id: 'RES-07', kind: 'sandbox', property: 'nothing of a build remains: processes of its UID, mounts, cgroup, build directory',
  proves: ['runtime clean-up'],
  run: async ({ subject, run }) => {
    const results: string[] = [];
    for (const exit of [0, 1]) {
      const build = await run(scriptPlan(subject, `${STUBBORN_CHILDREN} echo data > file; mkdir -p a/b/c; exit ${exit}`));
      results.push(build.result.outcome);
    }
    return {
      expected: { outcomes: ['succeeded', 'failed'], left: { processes: 0, buildDirs: [], cgroups: [], mounts: [] } },
      observed: { outcomes: results, left: leftovers(subject.plan) },
    };
  },
};
