import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'DEV-04', kind: 'probe', property: 'mknod of a device node fails', proves: ['capabilities.bounding', 'no CAP_MKNOD'],
  evaluate: ({ obs }) => ({ expected: 'EPERM', observed: obs.mknod }),
};
