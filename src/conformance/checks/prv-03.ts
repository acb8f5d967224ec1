import { CAPABILITIES } from '../../linux/capabilities.js';
import type { ProbeCheck } from '../check.js';

function mask(names: string[]): string {
  let bits = 0n;
  for (const name of names) bits |= 1n << BigInt(CAPABILITIES.indexOf(name as (typeof CAPABILITIES)[number]));
  return bits.toString(16).padStart(16, '0');
}

export const check: ProbeCheck = {
  id: 'PRV-03', kind: 'probe', property: 'capability sets as planned (all zero for the shipped policies, bounding and ambient included)',
  proves: ['capabilities.bounding', 'capabilities.ambient'],
  evaluate: ({ plan, obs }) => {
    const ambient = mask(plan.capabilities.ambient);
    const sets = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'];
    return {
      expected: { CapInh: ambient, CapPrm: ambient, CapEff: ambient, CapBnd: mask(plan.capabilities.bounding), CapAmb: ambient },
      observed: Object.fromEntries(sets.map((s) => [s, obs.status[s]])),
    };
  },
};
