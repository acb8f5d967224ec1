import { resolvePool } from '../../pool/resolve.js';
import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'PRV-01', kind: 'probe', property: "the build runs as a user of the pool, never root: real, effective and saved ids", proves: ['users'],
  evaluate: ({ plan, obs }) => {
    const member = resolvePool(plan.identity).members.find((m) => m.uid === obs.uid[0]);
    return {
      expected: { uid: 'a pool member', ids: 'real = effective = saved', gid: member ? member.gid : 'the member\'s gid' },
      observed: {
        uid: member && obs.uid[0] !== 0 ? 'a pool member' : `uid ${obs.uid[0]} is not in the pool`,
        ids: new Set(obs.uid).size === 1 && new Set(obs.gid).size === 1 ? 'real = effective = saved' : `uid ${obs.uid.join('/')}, gid ${obs.gid.join('/')}`,
        gid: obs.gid[0],
      },
    };
  },
};
