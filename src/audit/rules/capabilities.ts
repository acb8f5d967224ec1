// Privileges left to the builder: capabilities and the setuid escape hatch.
import type { Hit, Rule } from '../types.js';

/** Capabilities that amount to root or let a process leave a sandbox (container escapes use these). */
const CRITICAL_CAPABILITIES = new Set([
  'CAP_SYS_ADMIN', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_PTRACE', 'CAP_SYS_BOOT', 'CAP_SYS_TIME',
  'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_CHOWN', 'CAP_SETUID', 'CAP_SETGID',
  'CAP_SETPCAP', 'CAP_SETFCAP', 'CAP_MKNOD', 'CAP_NET_ADMIN', 'CAP_BPF', 'CAP_PERFMON',
  'CAP_MAC_ADMIN', 'CAP_MAC_OVERRIDE', 'CAP_LINUX_IMMUTABLE', 'CAP_SYSLOG', 'CAP_CHECKPOINT_RESTORE',
]);

function kept(list: string[], set: 'bounding' | 'ambient', wanted: (name: string) => boolean): Hit[] {
  return list.flatMap((name, i): Hit[] => (wanted(name) ? [{ pointer: `/capabilities/${set}/${i}`, message: `${name} is kept in the ${set} set` }] : []));
}

export const capabilityRules: Rule[] = [
  {
    id: 'STK-CAP-001',
    concern: 'capabilities',
    severity: 'critical',
    title: 'A capability that amounts to root is kept',
    why: 'CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_DAC_OVERRIDE, CAP_SETUID and their like let a process mount, load kernel code, read any file or become any user: each is a known way out of a sandbox.',
    fix: 'Remove it from capabilities.bounding and capabilities.ambient; package builds need none.',
    check: ({ plan }) => [
      ...kept(plan.capabilities.bounding, 'bounding', (n) => CRITICAL_CAPABILITIES.has(n)),
      ...kept(plan.capabilities.ambient, 'ambient', (n) => CRITICAL_CAPABILITIES.has(n)),
    ],
  },
  {
    id: 'STK-CAP-002',
    concern: 'capabilities',
    severity: 'high',
    title: 'Ambient capabilities are granted to the builder',
    why: 'Ambient capabilities are effective in the unprivileged builder and every program it runs: the build holds them from its first instruction.',
    fix: 'Set capabilities.ambient: [] (the default).',
    check: ({ plan }) => kept(plan.capabilities.ambient, 'ambient', () => true),
  },
  {
    id: 'STK-CAP-003',
    concern: 'capabilities',
    severity: 'medium',
    title: 'The capability bounding set is not empty',
    why: 'A capability in the bounding set can be regained through a setuid or file-capability binary; guix-daemon clears only the ambient set, Stockade can clear both.',
    fix: 'Set capabilities.bounding: [] (the default).',
    check: ({ plan }) => kept(plan.capabilities.bounding, 'bounding', (n) => !CRITICAL_CAPABILITIES.has(n)),
  },
  {
    id: 'STK-CAP-004',
    concern: 'capabilities',
    severity: 'high',
    title: 'no_new_privs is off',
    why: 'Without PR_SET_NO_NEW_PRIVS a setuid-root or file-capability binary visible in the sandbox raises the build\'s privileges, and neither seccomp nor Landlock can be applied.',
    fix: 'Set no_new_privs: true (the default).',
    check: ({ plan }) => (plan.noNewPrivs ? [] : [{ pointer: '/no_new_privs', message: 'no_new_privs is off: setuid and file-capability binaries raise privileges' }]),
  },
];
