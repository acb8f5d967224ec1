// Timeouts: a hung or endless build must not hold a pool UID and a slot for ever.
import type { Rule } from '../types.js';

export const timeoutRules: Rule[] = [
  {
    id: 'STK-TIME-001',
    concern: 'timeouts',
    severity: 'medium',
    title: 'No total timeout',
    why: 'A build that never ends holds a pool UID, a daemon slot and its resources for ever; with all UIDs held, no build runs.',
    fix: "Set timeouts.total (guix-daemon's default is 86400).",
    check: ({ plan }) => (plan.timeouts.totalSeconds === 0 ? [{ pointer: '/timeouts/total', message: 'timeouts.total is 0: the build is never stopped' }] : []),
  },
  {
    id: 'STK-TIME-002',
    concern: 'timeouts',
    severity: 'low',
    title: 'No silence timeout',
    why: 'A build stuck without output (waiting on input, deadlocked) is only stopped by the total timeout.',
    fix: "Set timeouts.max_silent (guix-daemon's default is 3600).",
    check: ({ plan }) => (plan.timeouts.maxSilentSeconds === 0 ? [{ pointer: '/timeouts/max_silent', message: 'timeouts.max_silent is 0: a silent build is never stopped' }] : []),
  },
];
