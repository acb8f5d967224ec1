import type { SandboxCheck } from '../check.js';
import { poolProcesses } from '../host.js';
import { scriptPlan } from '../sandbox.js';

/** Children that ignore the usual signals, one of them in a session of its own. */
export const STUBBORN_CHILDREN = "(trap '' TERM HUP INT; /bin/sleep 60) & /usr/bin/setsid /bin/sh -c \"trap '' TERM HUP; /bin/sleep 60\" & ";

export const check: SandboxCheck = {
  id: 'RES-04', kind: 'sandbox', property: 'the total timeout kills the whole build tree', proves: ['timeouts.total'],
  run: async ({ subject, run }) => {
    const plan = scriptPlan(subject, `${STUBBORN_CHILDREN} /bin/sleep 60`, (p) => {
      p.timeouts = { totalSeconds: 2, maxSilentSeconds: 0 };
    });
    const build = await run(plan);
    return {
      expected: { outcome: 'timeout', exitCode: 124, processesLeft: 0 },
      observed: { outcome: build.result.outcome, exitCode: build.result.exitCode, processesLeft: poolProcesses(plan) },
    };
  },
};
