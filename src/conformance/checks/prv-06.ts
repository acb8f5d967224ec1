import type { SandboxCheck } from '../check.js';
import { scriptPlan } from '../sandbox.js';

export const check: SandboxCheck = {
  id: 'PRV-06', kind: 'sandbox', property: 'two concurrent builds never share a UID', proves: ['users', 'pool locks'],
  run: async ({ subject, run }) => {
    // Both hold their UID while they sleep, so the second cannot get the first's.
    const plan = scriptPlan(subject, '/bin/sleep 1');
    const [a, b] = await Promise.all([run(plan), run(plan)]);
    const uids = [a.result.uid, b.result.uid];
    return {
      expected: { outcomes: ['succeeded', 'succeeded'], distinctUids: true },
      observed: { outcomes: [a.result.outcome, b.result.outcome], distinctUids: uids[0] !== undefined && uids[0] !== uids[1] },
    };
  },
};
