import type { ProbeCheck } from '../check.js';
import { plannedAnswer } from './util.js';

const TIOCSTI = 0x5412;

export const check: ProbeCheck = {
  id: 'PRV-08', kind: 'probe', property: 'no controlling terminal, its own session, and TIOCSTI refused', proves: ['setsid', 'seccomp.rules'],
  evaluate: ({ plan, obs }) => {
    const filtered = plannedAnswer(plan, 'ioctl', [0, TIOCSTI]);
    return {
      // stdin is /dev/null: without a filter rule the kernel answers ENOTTY.
      expected: { openDevTty: 'ENXIO', tiocsti: filtered === 'ok' ? 'ENOTTY' : filtered, sessionLeader: true },
      observed: { openDevTty: obs.tty.openDevTty, tiocsti: obs.tty.tiocsti, sessionLeader: obs.tty.sid === obs.pid },
    };
  },
};
