import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'KRN-01', kind: 'probe', property: 'seccomp filter mode (2) when the policy has rules, none otherwise', proves: ['seccomp'],
  evaluate: ({ plan, obs }) => ({ expected: plan.seccomp ? '2' : '0', observed: obs.status.Seccomp }),
};
