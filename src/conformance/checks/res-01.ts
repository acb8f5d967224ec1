import type { ProbeCheck } from '../check.js';

/** /proc/PID/limits names the resources like this. */
const LIMIT_NAMES: Record<string, string> = {
  cpu: 'cpu time', fsize: 'file size', data: 'data size', stack: 'stack size', core: 'core file size', rss: 'resident set',
  nproc: 'processes', nofile: 'open files', memlock: 'locked memory', as: 'address space', locks: 'file locks',
  sigpending: 'pending signals', msgqueue: 'msgqueue size', nice: 'nice priority', rtprio: 'realtime priority', rttime: 'realtime timeout',
};

export const check: ProbeCheck = {
  id: 'RES-01', kind: 'probe', property: 'rlimits as planned', proves: ['limits.rlimits'],
  evaluate: ({ plan, obs }) => {
    const planned = Object.entries(plan.limits.rlimits);
    if (!planned.length) return { skip: 'the policy sets no rlimits' };
    return {
      expected: Object.fromEntries(planned.map(([name, l]) => [name, { soft: String(l.soft), hard: String(l.hard) }])),
      observed: Object.fromEntries(planned.map(([name]) => [name, obs.start.limits[LIMIT_NAMES[name]] ?? 'not listed'])),
    };
  },
};
