import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'ENV-01', kind: 'probe', property: 'the environment is exactly the planned one', proves: ['environment'],
  evaluate: ({ plan, obs }) => {
    const sorted = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
    return { expected: sorted(plan.environment), observed: sorted(obs.start.environ) };
  },
};
