import { isUnder } from '../../policy/semantics.js';
import type { ProbeCheck } from '../check.js';
import { mountHolding } from './util.js';

export const check: ProbeCheck = {
  id: 'KRN-05', kind: 'probe', property: 'Landlock refuses writes outside the declared paths (even where mounts and modes allow them)', proves: ['landlock.write'],
  evaluate: ({ plan, obs }) => {
    const { landlock } = plan;
    if (!landlock) return { skip: 'the policy sets no Landlock ruleset' };
    const paths = Object.keys(obs.writeOpen);
    const expected = (path: string) => {
      if (mountHolding(plan, path)?.readonly ?? plan.root.readonly) return 'EROFS';
      return landlock.paths.some((p) => p.access.includes('write') && isUnder(path, p.path)) ? 'ok' : 'EACCES';
    };
    return {
      expected: Object.fromEntries(paths.map((p) => [p, expected(p)])),
      observed: obs.writeOpen,
    };
  },
};
