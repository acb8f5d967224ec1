import { spawnSync } from 'node:child_process';
import type { SandboxCheck } from '../check.js';
import { poolProcesses } from '../host.js';
import { scriptPlan } from '../sandbox.js';

export const check: SandboxCheck = {
  id: 'RES-02', kind: 'sandbox', property: 'a fork bomb is contained by the pids limit and the host keeps working', proves: ['limits.cgroup.pids'],
  run: async ({ subject, run }) => {
    const limit = subject.plan.limits.cgroup.pids;
    if (!limit) return { skip: 'the policy sets no pids limit (a fork bomb would reach the host)' };
    const plan = scriptPlan(subject, 'f() { f | f & }; f; while :; do :; done', (p) => {
      p.timeouts = { totalSeconds: 4, maxSilentSeconds: 0 };
    });
    let most = 0;
    let hostWorks = true;
    const sampler = setInterval(() => {
      most = Math.max(most, poolProcesses(plan));
      hostWorks &&= spawnSync('/bin/true').status === 0;
    }, 250);
    const build = await run(plan);
    clearInterval(sampler);
    return {
      expected: { outcome: 'timeout', processesAtMost: limit, hostWorks: true, processesLeft: 0 },
      observed: { outcome: build.result.outcome, processesAtMost: most <= limit ? limit : most, hostWorks, processesLeft: poolProcesses(plan) },
    };
  },
};
