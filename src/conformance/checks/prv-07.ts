import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'PRV-07', kind: 'probe', property: 'nothing outside can be signalled or traced: host processes do not exist for the build',
  proves: ['namespaces: pid'],
  evaluate: ({ obs }) => ({ expected: { signalHostProcess: 'ESRCH' }, observed: { signalHostProcess: obs.killHost } }),
};
