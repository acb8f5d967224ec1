import type { ProbeCheck } from '../check.js';
import { deniedSyscalls, REACHING, verdict } from '../syscalls.js';

export const check: ProbeCheck = {
  id: 'KRN-04', kind: 'probe', property: 'allowed syscalls reach the kernel (a bad fd gets EBADF, not the filter)', proves: ['seccomp.default'],
  evaluate: ({ plan, obs }) => {
    const errno = plan.seccomp?.defaultAction.kind === 'errno' ? plan.seccomp.defaultAction.name : 'EPERM';
    const allowed = REACHING.filter((name) => !deniedSyscalls(plan).has(name));
    return {
      expected: Object.fromEntries(allowed.map((name) => [name, 'reached the kernel (EBADF)'])),
      observed: Object.fromEntries(allowed.map((name) => [name, verdict(obs.syscalls[`x86_64:${name}`], errno)])),
    };
  },
};
