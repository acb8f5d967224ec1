// Per-process limits applied to init before the identity drop: rlimits (raising a hard limit
// needs privilege), personality, and the OOM score (guix: 1000, builds die first).
import { writeFileSync } from 'node:fs';
import { setPersonality, setRlimit } from '../ffi/libc.js';
import type { Plan } from '../plan/types.js';

export function applyLimits(plan: Plan): void {
  for (const [name, { soft, hard }] of Object.entries(plan.limits.rlimits)) setRlimit(name, soft, hard);
  if (plan.personality.length) setPersonality(plan.personality);
  writeFileSync('/proc/self/oom_score_adj', String(plan.oomScoreAdj));
}
