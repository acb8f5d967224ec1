import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'PRV-14', kind: 'probe', property: 'the builder starts with no interval timer armed (execve keeps them; init must not hand one on)',
  proves: ['runtime: interval timers'],
  evaluate: ({ obs }) => ({ expected: { real: 0, virtual: 0, prof: 0 }, observed: obs.start.timers }),
};
