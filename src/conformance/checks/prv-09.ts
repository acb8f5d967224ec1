import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'PRV-09', kind: 'probe', property: 'no fd above 2 at start', proves: ['runtime: close_range'],
  evaluate: ({ obs }) => ({ expected: [0, 1, 2], observed: obs.start.fds }),
};
