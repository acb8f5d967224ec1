import type { ProbeCheck } from '../check.js';
import { observedMount } from './util.js';

export const check: ProbeCheck = {
  id: 'FS-01', kind: 'probe', property: 'the root is read-only', proves: ['filesystem.root.readonly'],
  evaluate: ({ plan, obs }) => ({
    // A writable root is still root-owned 0555: the build user gets EACCES there, not EROFS.
    expected: { mount: plan.root.readonly ? 'ro' : 'rw', createFile: plan.root.readonly ? 'EROFS' : 'EACCES' },
    observed: { mount: observedMount(obs, '/')?.options.includes('ro') ? 'ro' : 'rw', createFile: obs.writable['/'] },
  }),
};
