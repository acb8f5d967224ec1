import type { ProbeCheck } from '../check.js';

const TEMP_VARS = ['TMPDIR', 'TEMPDIR', 'TMP', 'TEMP', 'NIX_BUILD_TOP'];

export const check: ProbeCheck = {
  id: 'ENV-02', kind: 'probe', property: 'TMPDIR and the other temporary-directory variables point at the build directory', proves: ['environment.build_dir_vars'],
  evaluate: ({ plan, obs }) => {
    const vars = TEMP_VARS.filter((v) => v in obs.start.environ || v in plan.environment);
    if (!vars.length) return { skip: 'the policy sets no temporary-directory variable' };
    return {
      expected: Object.fromEntries(vars.map((v) => [v, plan.build.dir])),
      observed: Object.fromEntries(vars.map((v) => [v, obs.start.environ[v] ?? 'unset'])),
    };
  },
};
