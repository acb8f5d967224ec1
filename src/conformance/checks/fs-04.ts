import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'FS-04', kind: 'probe', property: '/tmp is private and writable', proves: ['filesystem.tmp'],
  evaluate: ({ plan, obs, host }) => {
    if (!plan.mounts.some((m) => m.role === 'tmp')) return { skip: 'the policy mounts no /tmp' };
    return {
      expected: { createFile: 'ok', hostTmpFileVisible: false },
      observed: { createFile: obs.writable['/tmp'], hostTmpFileVisible: obs.exists[host.tmpMarker] },
    };
  },
};
