import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'NET-02', kind: 'probe', property: 'hostname and domainname as planned', proves: ['hostname', 'domainname'],
  evaluate: ({ plan, obs }) => ({
    expected: { hostname: plan.hostname, domainname: plan.domainname },
    observed: { hostname: obs.hostname, domainname: obs.domainname },
  }),
};
