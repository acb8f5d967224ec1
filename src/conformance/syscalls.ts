// Which syscalls the probe calls, and what each answer means. A probe passes -1 for every
// argument: a bad fd, flag or pointer makes a call that reaches the kernel fail harmlessly
// (EBADF, EINVAL, EFAULT…), while a filtered one returns the policy's errno.
import { X32_SYSCALL_BIT } from '../linux/constants.js';
import { archToken, libseccomp, NR_SCMP_ERROR } from '../ffi/seccomp.js';
import { X86_64_SYSCALLS } from '../linux/syscalls.js';
import type { Plan } from '../plan/types.js';
import type { CallResult, SyscallProbe } from './observation.js';

/** Allowed everywhere and answered EBADF for fd -1: proof that calls reach the kernel. */
export const REACHING = ['read', 'close', 'dup', 'fstat'];

/** Syscalls the Plan refuses outright (no argument condition) with an errno, and that errno's name. */
export function deniedSyscalls(plan: Plan): Map<string, string> {
  const denied = new Map<string, string>();
  for (const rule of plan.seccomp?.rules ?? []) {
    if (rule.args.length === 0 && rule.action.kind === 'errno') denied.set(rule.syscall, rule.action.name);
  }
  return denied;
}

/** Architectures the probe can reach from a 64-bit process (x86 needs int 0x80, which Node cannot issue). */
export function probedArchitectures(plan: Plan): SyscallProbe['arch'][] {
  const planned = plan.seccomp?.architectures ?? [];
  return planned.includes('x32') ? ['x86_64', 'x32'] : ['x86_64'];
}

function number(name: string, arch: SyscallProbe['arch']): number | null {
  const known = libseccomp().resolveNameArch(archToken(arch), name);
  if (known !== NR_SCMP_ERROR) return known;
  // Newer than this libseccomp (fchmodat2…): x32 shares x86_64's numbers for these.
  const nr = X86_64_SYSCALLS[name];
  if (nr === undefined) return null;
  return arch === 'x32' ? nr | X32_SYSCALL_BIT : nr;
}

export function syscallProbes(plan: Plan): SyscallProbe[] {
  const names = [...deniedSyscalls(plan).keys(), ...REACHING.filter((n) => !deniedSyscalls(plan).has(n))];
  const probes: SyscallProbe[] = [];
  for (const arch of probedArchitectures(plan)) {
    for (const name of names) {
      const nr = number(name, arch);
      if (nr !== null) probes.push({ name, arch, nr });
    }
  }
  return probes;
}

/** How a raw answer reads: blocked by the filter (its errno, or ENOSYS) or reached the kernel. */
export function verdict(answer: CallResult | undefined, plannedErrno: string): string {
  if (answer === undefined) return 'not probed';
  return answer === plannedErrno || answer === 'ENOSYS' ? 'blocked' : `reached the kernel (${answer})`;
}
