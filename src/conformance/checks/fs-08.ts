import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'FS-08', kind: 'probe', property: "/proc shows only the build's processes; the builder is PID 1", proves: ['proc.mount', 'namespaces: pid'],
  evaluate: ({ obs }) => ({
    expected: { builderPid: 1, visiblePids: [1] },
    observed: { builderPid: obs.pid, visiblePids: obs.procPids },
  }),
};
