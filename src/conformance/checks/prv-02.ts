import { resolvePool } from '../../pool/resolve.js';
import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'PRV-02', kind: 'probe', property: 'supplementary groups are as planned', proves: ['users.supplementary_groups'],
  evaluate: ({ plan, obs }) => {
    const member = resolvePool(plan.identity).members.find((m) => m.uid === obs.uid[0]);
    if (!member) return { expected: 'a pool member', observed: `uid ${obs.uid[0]}` };
    return { expected: [...member.groups].sort((a, b) => a - b), observed: [...obs.groups].sort((a, b) => a - b) };
  },
};
