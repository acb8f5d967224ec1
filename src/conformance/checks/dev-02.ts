import { readFileSync } from 'node:fs';
import type { ProbeCheck } from '../check.js';
import { observedMount } from './util.js';

/** The device number of the host's own /dev/pts. */
function hostDevpts(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (fields[4] === '/dev/pts') return fields[2];
  }
  return undefined;
}

export const check: ProbeCheck = {
  id: 'DEV-02', kind: 'probe', property: "a private devpts instance: the host's ptys are not reachable", proves: ['devices: pts'],
  evaluate: ({ plan, obs }) => {
    if (!plan.mounts.some((m) => m.type === 'devpts')) return { skip: 'the policy mounts no devpts' };
    const inside = observedMount(obs, '/dev/pts');
    const host = hostDevpts();
    return {
      expected: { fstype: 'devpts', instance: 'private' },
      observed: { fstype: inside?.fstype ?? 'none', instance: inside && inside.device !== host ? 'private' : "the host's" },
    };
  },
};
