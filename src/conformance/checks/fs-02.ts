import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isUnder } from '../../policy/semantics.js';
import type { Plan } from '../../plan/types.js';
import { bindHostPath } from '../../plan/describe.js';
import type { ProbeCheck } from '../check.js';
import { effectiveMounts, mountHolding } from './util.js';

/** Whether the Plan makes `path` visible: a planned target at or below it, or a bind whose host source has it. */
function planned(plan: Plan, path: string): boolean {
  const targets = [...effectiveMounts(plan).map((m) => m.target), ...plan.etc.map((e) => e.path), ...plan.devices.map((d) => `/dev/${d.name}`)];
  if (targets.some((t) => isUnder(t, path))) return true;
  const holder = mountHolding(plan, path);
  const host = holder?.type === 'bind' ? bindHostPath(holder.source) : undefined;
  return host !== undefined && existsSync(join(host, path.slice(holder!.target.length)));
}

export const check: ProbeCheck = {
  id: 'FS-02', kind: 'probe', property: 'only declared paths are visible (no /home, /root, /etc/shadow, /var, host /tmp)',
  proves: ['filesystem.paths', 'filesystem.inputs', 'filesystem.outputs', 'filesystem.etc'],
  evaluate: ({ plan, obs }) => {
    const paths = Object.keys(obs.exists);
    return {
      expected: Object.fromEntries(paths.map((p) => [p, planned(plan, p) ? 'visible' : 'absent'])),
      observed: Object.fromEntries(paths.map((p) => [p, obs.exists[p] ? 'visible' : 'absent'])),
    };
  },
};
