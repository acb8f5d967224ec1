import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'PRV-04', kind: 'probe', property: 'no_new_privs is set as planned', proves: ['no_new_privs'],
  evaluate: ({ plan, obs }) => ({ expected: plan.noNewPrivs ? '1' : '0', observed: obs.status.NoNewPrivs }),
};
