// Output hand-over: only the owner of handed-over outputs is a policy's choice, and any owner
// but root can rewrite them once they are installed.
import type { Rule } from '../types.js';

export const outputRules: Rule[] = [
  {
    id: 'STK-OUT-001',
    concern: 'filesystem',
    severity: 'medium',
    title: 'Outputs are handed over to an owner other than root',
    why: "The owner of an output can chmod it and rewrite it after the build: anything run as that account (or a build, if it is a pool UID) can change what other builds and users take as a build's result.",
    fix: 'Leave outputs.owner out (root:root, as guix-daemon), or use an account that runs nothing else.',
    check: ({ plan }) => {
      const { uid, gid } = plan.outputs.owner;
      if (uid === 0) return [];
      const pool = plan.identity.pool.kind === 'group' ? `; make sure it is no member of the pool group ${plan.identity.pool.group}` : '';
      return [{ pointer: '/outputs/owner/uid', message: `outputs are handed over to ${uid}:${gid}, which can change them afterwards${pool}` }];
    },
  },
];
