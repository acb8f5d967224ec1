import type { ProbeCheck } from '../check.js';
import { deniedSyscalls, verdict } from '../syscalls.js';

export const check: ProbeCheck = {
  id: 'KRN-03', kind: 'probe', property: 'denied syscalls are blocked through their x32 numbers too', proves: ['seccomp.architectures', 'seccomp.deny'],
  evaluate: ({ plan, obs }) => {
    if (!plan.seccomp?.architectures.includes('x32')) return { skip: 'the policy does not plan the x32 ABI' };
    const denied = [...deniedSyscalls(plan)].filter(([name]) => `x32:${name}` in obs.syscalls);
    if (!denied.length) return { skip: 'the policy denies no syscall outright' };
    return {
      expected: Object.fromEntries(denied.map(([name]) => [name, 'blocked'])),
      observed: Object.fromEntries(denied.map(([name, errno]) => [name, verdict(obs.syscalls[`x32:${name}`], errno)])),
    };
  },
};
