import type { ProbeCheck } from '../check.js';
import { observedMount } from './util.js';

export const check: ProbeCheck = {
  id: 'FS-09', kind: 'probe', property: '/sys is absent or read-only', proves: ['filesystem.paths'],
  evaluate: ({ plan, obs }) => {
    const planned = plan.mounts.find((m) => m.target === '/sys');
    const observed = !obs.exists['/sys'] ? 'absent' : observedMount(obs, '/sys')?.options.includes('ro') ? 'read-only' : 'writable';
    return { expected: planned ? 'read-only' : 'absent', observed };
  },
};
