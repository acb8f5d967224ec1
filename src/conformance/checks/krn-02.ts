import type { ProbeCheck } from '../check.js';
import { deniedSyscalls, verdict } from '../syscalls.js';

export const check: ProbeCheck = {
  id: 'KRN-02', kind: 'probe', property: 'each denied syscall returns the planned errno on x86_64 (namespaces, mount, keyrings, bpf, userfaultfd, io_uring, perf, ptrace, kexec…)',
  proves: ['seccomp.deny', 'seccomp.errno'],
  evaluate: ({ plan, obs }) => {
    const denied = [...deniedSyscalls(plan)].filter(([name]) => `x86_64:${name}` in obs.syscalls);
    if (!denied.length) return { skip: 'the policy denies no syscall outright' };
    return {
      expected: Object.fromEntries(denied.map(([name]) => [name, 'blocked'])),
      observed: Object.fromEntries(denied.map(([name, errno]) => [name, verdict(obs.syscalls[`x86_64:${name}`], errno)])),
    };
  },
};
