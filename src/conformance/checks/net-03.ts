import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'NET-03', kind: 'probe', property: "socket(AF_VSOCK) fails with EPERM unless the policy opens vsock (a network namespace does not isolate it); opened, it answers as on the host",
  proves: ['network.vsock'],
  evaluate: ({ plan, obs, host }) => ({
    expected: plan.network.vsock ? host.vsock : 'EPERM',
    observed: obs.vsock,
  }),
};
