import type { SandboxCheck } from '../check.js';
import { poolProcesses } from '../host.js';
import { scriptPlan } from '../sandbox.js';
import { STUBBORN_CHILDREN } from './res-04.js';

export const check: SandboxCheck = {
  id: 'RES-05', kind: 'sandbox', property: 'the silent timeout kills the whole build tree', proves: ['timeouts.max_silent'],
  run: async ({ subject, run }) => {
    const plan = scriptPlan(subject, `echo started; ${STUBBORN_CHILDREN} /bin/sleep 60`, (p) => {
      p.timeouts = { totalSeconds: 0, maxSilentSeconds: 2 };
    });
    const build = await run(plan);
    return {
      expected: { outcome: 'silent-timeout', output: 'started\n', processesLeft: 0 },
      observed: { outcome: build.result.outcome, output: build.stdout, processesLeft: poolProcesses(plan) },
    };
  },
};
