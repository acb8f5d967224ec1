import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'KRN-06', kind: 'probe', property: "the host's abstract unix sockets are unreachable (guix-daemon's 2025 advisory)", proves: ['network.mode', 'landlock.scope'],
  evaluate: ({ plan, obs }) => ({
    expected: plan.network.mode === 'host' ? 'ok' : 'ECONNREFUSED',
    observed: obs.abstractSocket,
  }),
};
