import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'ENV-03', kind: 'probe', property: 'stdin is /dev/null', proves: ['runtime: stdio'],
  evaluate: ({ obs }) => ({ expected: '/dev/null', observed: obs.start.stdin }),
};
