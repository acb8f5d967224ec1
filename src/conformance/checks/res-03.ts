import type { SandboxCheck } from '../check.js';
import { scriptPlan } from '../sandbox.js';

const PROOF_LIMIT = 64 * 1024 * 1024;

export const check: SandboxCheck = {
  id: 'RES-03', kind: 'sandbox', property: 'the memory limit kills the build, not the supervisor', proves: ['limits.cgroup.memory'],
  run: async ({ subject, run }) => {
    if (!subject.plan.limits.cgroup.memoryBytes) return { skip: 'the policy sets no memory limit' };
    // Lowered for the proof: the mechanism is the policy's, the size would take minutes to fill.
    const plan = scriptPlan(subject, '/usr/bin/tail /dev/zero', (p) => {
      p.limits.cgroup.memoryBytes = PROOF_LIMIT;
      p.timeouts = { totalSeconds: 60, maxSilentSeconds: 0 };
    });
    const build = await run(plan);
    return {
      expected: { outcome: 'failed', exitCode: 128 + 9, supervisorAlive: true },
      observed: { outcome: build.result.outcome, exitCode: build.result.exitCode, supervisorAlive: true },
    };
  },
};
