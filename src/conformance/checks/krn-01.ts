import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'KRN-01', kind: 'probe', property: "seccomp filter mode (2) when the policy has rules or keeps vsock closed (the runtime's own filter), none otherwise",
  proves: ['seccomp', 'network.vsock'],
  evaluate: ({ plan, obs }) => ({ expected: plan.seccomp || !plan.network.vsock ? '2' : '0', observed: obs.status.Seccomp }),
};
