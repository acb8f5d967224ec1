import type { ProbeCheck } from '../check.js';
import { mountHolding, observedMount, plannedAnswer } from './util.js';

const AT_FDCWD = -100;

export const check: ProbeCheck = {
  id: 'PRV-05', kind: 'probe', property: 'setuid/setgid bits cannot be used: refused where the filter says, and never effective',
  proves: ['seccomp.rules', 'no_new_privs', 'filesystem (nosuid)'],
  evaluate: ({ plan, obs }) => {
    const dir = mountHolding(plan, plan.build.dir)?.target ?? '/';
    const bitSet = (obs.setuidChmod.mode & 0o6000) !== 0;
    const nosuid = observedMount(obs, dir)?.options.includes('nosuid') ?? false;
    return {
      expected: { chmod: plannedAnswer(plan, 'chmod', [0, 0o6755]), fchmodat2: plannedAnswer(plan, 'fchmodat2', [AT_FDCWD, 0, 0o4755]), effective: false },
      observed: { chmod: obs.setuidChmod.result, fchmodat2: obs.setuidFchmodat2, effective: bitSet && !nosuid && obs.status.NoNewPrivs !== '1' },
    };
  },
};
