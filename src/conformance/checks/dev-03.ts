import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'DEV-03', kind: 'probe', property: 'no block devices', proves: ['devices'],
  evaluate: ({ obs }) => ({ expected: [], observed: obs.devices.filter((d) => d.type === 'block').map((d) => d.name) }),
};
