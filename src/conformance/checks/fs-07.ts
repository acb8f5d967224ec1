import type { ProbeCheck } from '../check.js';
import { effectiveMounts, observedMount } from './util.js';

const FLAGS = ['ro', 'nosuid', 'nodev', 'noexec'] as const;

export const check: ProbeCheck = {
  id: 'FS-07', kind: 'probe', property: 'every mount has its planned flags: nosuid,nodev everywhere except device binds', proves: ['filesystem', 'devices'],
  evaluate: ({ plan, obs }) => {
    const planned = [
      { target: '/', ro: plan.root.readonly, nosuid: true, nodev: true, noexec: false },
      ...effectiveMounts(plan).map((m) => ({ target: m.target, ro: m.readonly, nosuid: m.nosuid, nodev: m.nodev, noexec: m.noexec })),
    ];
    return {
      expected: Object.fromEntries(planned.map((m) => [m.target, FLAGS.filter((f) => m[f]).join(',')])),
      observed: Object.fromEntries(planned.map((m) => [m.target, FLAGS.filter((f) => observedMount(obs, m.target)?.options.includes(f)).join(',')])),
    };
  },
};
