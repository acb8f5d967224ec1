import type { ProbeCheck } from '../check.js';

const NONE = '0000000000000000';

export const check: ProbeCheck = {
  id: 'PRV-12', kind: 'probe', property: 'the builder starts with every signal at its default disposition and none blocked (none ignored, as guix-daemon and Nix start it)',
  proves: ['runtime: signal dispositions and mask'],
  evaluate: ({ obs }) => ({
    expected: { SigIgn: NONE, SigBlk: NONE, SigCgt: NONE },
    observed: obs.start.signals,
  }),
};
