// The syscall filter: present, covering every ABI, blocking the known escape syscalls, and
// not slowing down the syscalls every build makes all the time.
import type { Policy } from '../../policy/types.js';
import type { SeccompArgCondition, SeccompPlan, SeccompRule } from '../../plan/types.js';
import type { AuditInput, Hit, Rule, Severity } from '../types.js';

const BLOCKING_ACTIONS = new Set(['errno', 'kill_process', 'kill_thread', 'trap']);

function blocks(rule: SeccompRule): boolean {
  return BLOCKING_ACTIONS.has(rule.action.kind);
}

/** Every call of `name` is refused, whatever its arguments. */
function blockedAlways(filter: SeccompPlan, name: string): boolean {
  const rules = filter.rules.filter((r) => r.syscall === name);
  if (rules.some((r) => r.args.length === 0 && blocks(r))) return true;
  // An allow-list refuses what no rule lets through; a conditional allow opens a hole.
  return blocks({ syscall: name, action: filter.defaultAction, args: [], optional: false }) && !rules.some((r) => !blocks(r));
}

/** Every call of `name` whose argument `index` has `(arg & mask) == value` is refused. */
function blockedWhen(filter: SeccompPlan, name: string, index: number, mask: number, value: number): boolean {
  return (
    blockedAlways(filter, name) ||
    filter.rules.some((r) => r.syscall === name && blocks(r) && r.args.length === 1 && r.args[0].index === index && r.args[0].op === 'masked_eq' && r.args[0].mask === mask && r.args[0].value === value)
  );
}

/** Every call of `name` whose arguments match all of `pattern` is refused: some rule asks no more than the pattern gives. */
function blockedWhenAll(filter: SeccompPlan, name: string, pattern: SeccompArgCondition[]): boolean {
  const implied = (c: SeccompArgCondition) => pattern.some((p) => p.index === c.index && p.op === c.op && p.mask === c.mask && p.value === c.value);
  return blockedAlways(filter, name) || filter.rules.some((r) => r.syscall === name && blocks(r) && r.args.length > 0 && r.args.every(implied));
}

/** One thing a filter should refuse: a syscall, or a syscall with an argument pattern. */
interface Escape {
  label: string;
  blocked(filter: SeccompPlan): boolean;
}

const syscall = (name: string): Escape => ({ label: name, blocked: (f) => blockedAlways(f, name) });
const flag = (name: string, index: number, flagName: string, bit: number): Escape => ({ label: `${name}(${flagName})`, blocked: (f) => blockedWhen(f, name, index, bit, bit) });
// The kernel compares only the low 32 bits of an ioctl request: an `eq` on the 64-bit value is bypassed by setting high bits.
const ioctlRequest = (requestName: string, request: number): Escape => ({ label: `ioctl(${requestName})`, blocked: (f) => blockedWhen(f, 'ioctl', 1, 0xffffffff, request) });

const CLONE_NAMESPACE_FLAGS: [string, number][] = [
  ['CLONE_NEWNS', 0x00020000], ['CLONE_NEWCGROUP', 0x02000000], ['CLONE_NEWUTS', 0x04000000], ['CLONE_NEWIPC', 0x08000000],
  ['CLONE_NEWUSER', 0x10000000], ['CLONE_NEWPID', 0x20000000], ['CLONE_NEWNET', 0x40000000], ['CLONE_NEWTIME', 0x00000080],
];
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const setidModes = (name: string, modeIndex: number): Escape[] => [flag(name, modeIndex, 'S_ISUID', S_ISUID), flag(name, modeIndex, 'S_ISGID', S_ISGID)];
const O_CREAT = 0o100;
/** O_TMPFILE's own bit (O_TMPFILE also carries O_DIRECTORY): an unnamed file made with the mode, linked in later. */
const O_TMPFILE_BIT = 0o20000000;
/** Where open-like calls take their flags and mode. */
const CREATING_CALLS: Record<string, { flags: number; mode: number }> = { open: { flags: 1, mode: 2 }, openat: { flags: 2, mode: 3 } };
const masked = (index: number, bit: number): SeccompArgCondition => ({ index, op: 'masked_eq', mask: bit, value: bit });
/** open/openat making a file (O_CREAT or O_TMPFILE) with a setuid/setgid mode. */
const setidCreation = (name: string): Escape[] => {
  const { flags, mode } = CREATING_CALLS[name];
  return ([['O_CREAT', O_CREAT], ['O_TMPFILE', O_TMPFILE_BIT]] as const).flatMap(([flagName, flagBit]) =>
    ([['S_ISUID', S_ISUID], ['S_ISGID', S_ISGID]] as const).map(([modeName, modeBit]) => ({
      label: `${name}(${flagName}, ${modeName})`,
      blocked: (f: SeccompPlan) => blockedWhenAll(f, name, [masked(flags, flagBit), masked(mode, modeBit)]),
    })),
  );
};

/** A condition of a rule refusing setid file creation, which STK-SEC-020 asks for: not a performance finding. */
function setidCreationCondition(syscall: string, c: { index: number; op: string; mask?: number; value: number }): boolean {
  const at = CREATING_CALLS[syscall];
  if (!at || c.op !== 'masked_eq' || c.mask !== c.value) return false;
  return (c.index === at.mode && (c.mask === S_ISUID || c.mask === S_ISGID)) || (c.index === at.flags && (c.mask === O_CREAT || c.mask === O_TMPFILE_BIT));
}

interface EscapeGroup {
  id: string;
  severity: Severity;
  title: string;
  why: string;
  escapes: Escape[];
}

const ESCAPE_GROUPS: EscapeGroup[] = [
  {
    id: 'STK-SEC-010', severity: 'high', title: 'New namespaces can be created',
    why: 'unshare, setns, clone3 and clone with a CLONE_NEW* flag give the build a user namespace in which it is root: every namespaced kernel interface (netfilter, mounts, …) becomes reachable, the source of many local privilege escalations.',
    escapes: [syscall('unshare'), syscall('setns'), syscall('clone3'), ...CLONE_NAMESPACE_FLAGS.map(([n, bit]) => flag('clone', 0, n, bit))],
  },
  {
    id: 'STK-SEC-011', severity: 'medium', title: 'The mount syscalls are reachable',
    why: 'Inside a user namespace the build may mount and reshape its view of the file system; the new mount API (fsopen, open_tree…) has had its own vulnerabilities.',
    escapes: ['mount', 'umount2', 'pivot_root', 'move_mount', 'open_tree', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr'].map(syscall),
  },
  {
    id: 'STK-SEC-012', severity: 'medium', title: 'Kernel keyrings are reachable',
    why: 'Keyrings are not namespaced: a build could read or plant keys of the build user across builds, and keyctl has a long history of kernel bugs.',
    escapes: ['add_key', 'request_key', 'keyctl'].map(syscall),
  },
  {
    id: 'STK-SEC-013', severity: 'medium', title: 'bpf is reachable',
    why: 'Unprivileged eBPF is a frequent local-privilege-escalation vector; builds never need it.',
    escapes: [syscall('bpf')],
  },
  {
    id: 'STK-SEC-014', severity: 'medium', title: 'userfaultfd is reachable',
    why: 'userfaultfd lets a process pause the kernel mid-copy, which turns many race conditions into reliable exploits.',
    escapes: [syscall('userfaultfd')],
  },
  {
    id: 'STK-SEC-015', severity: 'high', title: 'io_uring is reachable',
    why: 'io_uring has been the subject of many kernel exploits, and its operations bypass seccomp: a filter cannot see what the ring does.',
    escapes: ['io_uring_setup', 'io_uring_enter', 'io_uring_register'].map(syscall),
  },
  {
    id: 'STK-SEC-016', severity: 'medium', title: 'perf_event_open is reachable',
    why: 'Performance counters leak information across processes and perf_event_open is a recurring source of kernel bugs.',
    escapes: [syscall('perf_event_open')],
  },
  {
    id: 'STK-SEC-017', severity: 'low', title: 'ptrace and cross-process memory access are reachable',
    why: 'The build can only trace its own processes, but ptrace has bypassed seccomp filters in older kernels and is a tool of many exploits.',
    escapes: ['ptrace', 'process_vm_readv', 'process_vm_writev'].map(syscall),
  },
  {
    id: 'STK-SEC-018', severity: 'low', title: 'kexec is reachable',
    why: 'Refused anyway without CAP_SYS_BOOT; listing it costs nothing and guards against a capability granted by mistake.',
    escapes: ['kexec_load', 'kexec_file_load'].map(syscall),
  },
  {
    id: 'STK-SEC-019', severity: 'low', title: 'Kernel module loading is reachable',
    why: 'Refused anyway without CAP_SYS_MODULE; listing it costs nothing and guards against a capability granted by mistake.',
    escapes: ['init_module', 'finit_module', 'delete_module'].map(syscall),
  },
  {
    id: 'STK-SEC-020', severity: 'medium', title: 'Files can be made setuid or setgid',
    why: 'A build that creates a setuid or setgid file can leave a way for anyone to act as the build user on the host (Nix refuses these modes in its filter; guix only strips them from outputs afterwards). Making the file with the mode (open, creat, mknod) is as good as chmod; openat2 passes its mode in memory the filter cannot read, so it is refused outright.',
    escapes: [
      ...setidModes('chmod', 1), ...setidModes('fchmod', 1), ...setidModes('fchmodat', 2), ...setidModes('fchmodat2', 2),
      ...setidCreation('open'), ...setidCreation('openat'), ...setidModes('creat', 1), ...setidModes('mknod', 1), ...setidModes('mknodat', 2), syscall('openat2'),
    ],
  },
  {
    id: 'STK-SEC-021', severity: 'medium', title: 'Input can be pushed into a terminal',
    why: 'TIOCSTI and TIOCLINUX inject keystrokes into a terminal the build can reach (CVE-2017-5226 for bubblewrap): commands typed into the admin\'s shell after the build ends.',
    escapes: [ioctlRequest('TIOCSTI', 0x5412), ioctlRequest('TIOCLINUX', 0x541c)],
  },
];

/** Syscalls every program makes constantly: argument conditions on them defeat the kernel's seccomp cache. */
const HOT_SYSCALLS = new Set([
  'read', 'write', 'readv', 'writev', 'pread64', 'pwrite64', 'mmap', 'munmap', 'mprotect', 'brk', 'futex', 'close',
  'fstat', 'newfstatat', 'statx', 'openat', 'lseek', 'clock_gettime', 'getpid', 'gettid', 'rt_sigprocmask', 'rt_sigaction',
  'madvise', 'poll', 'ppoll', 'epoll_wait', 'recvfrom', 'sendto',
]);

/** Where a finding about the filter's content points: the list that should hold the missing names. */
function listPointer(policy: Policy): string {
  if (policy.seccomp?.deny) return '/seccomp/deny';
  if (policy.seccomp?.rules) return '/seccomp/rules';
  if (policy.seccomp?.profile) return '/seccomp/profile';
  return '/seccomp';
}

function escapeRule(group: EscapeGroup): Rule {
  return {
    id: group.id,
    concern: 'seccomp',
    severity: group.severity,
    title: group.title,
    why: group.why,
    fix: `Refuse ${group.escapes.map((e) => e.label).join(', ')} in seccomp.deny or seccomp.rules (see policies/strict.yaml).`,
    check: ({ plan, policy }: AuditInput): Hit[] => {
      if (!plan.seccomp) return [];
      const missing = group.escapes.filter((e) => !e.blocked(plan.seccomp!)).map((e) => e.label);
      if (missing.length === 0) return [];
      return [{ pointer: listPointer(policy), message: `the seccomp filter lets through ${missing.join(', ')}`, badness: missing.length / group.escapes.length }];
    },
  };
}

export const seccompRules: Rule[] = [
  {
    id: 'STK-SEC-001',
    concern: 'seccomp',
    severity: 'medium',
    title: 'No seccomp filter',
    why: 'Without a filter every syscall reaches the kernel, including the ones no build needs and most kernel exploits use (unshare, keyctl, bpf, io_uring…). guix-daemon has none; Nix has one.',
    fix: 'Add a seccomp section, e.g. extend policies/strict.yaml.',
    check: ({ plan }) => (plan.seccomp ? [] : [{ pointer: '/seccomp', message: 'no seccomp filter: every syscall reaches the kernel' }]),
  },
  {
    id: 'STK-SEC-002',
    concern: 'seccomp',
    severity: 'high',
    title: 'The filter does not cover the x86 and x32 ABIs',
    why: 'On x86_64 a process can also make syscalls through the 32-bit x86 ABI (int 0x80) and the x32 ABI, with their own numbers: a filter written for x86_64 alone either lets them through or kills 32-bit builds.',
    fix: 'Set seccomp.architectures: [native, x86, x32].',
    check: ({ plan }) => {
      const arches = plan.seccomp?.architectures ?? [];
      if (!arches.includes('x86_64')) return [];
      const missing = ['x86', 'x32'].filter((a) => !arches.includes(a));
      return missing.length ? [{ pointer: '/seccomp/architectures', message: `the seccomp filter does not cover ${missing.join(' and ')}`, badness: missing.length / 2 }] : [];
    },
  },
  ...ESCAPE_GROUPS.map(escapeRule),
  {
    id: 'STK-SEC-030',
    concern: 'seccomp',
    severity: 'low',
    title: 'Argument conditions on hot syscalls (performance)',
    why: 'The kernel caches the verdict for syscalls whose filter result never depends on arguments; a condition on read, write, mmap… makes every such call run the whole filter.',
    fix: 'Filter these syscalls by name only, or not at all.',
    check: ({ policy }) =>
      (policy.seccomp?.rules ?? []).flatMap((rule, i): Hit[] => {
        const hot = (Array.isArray(rule.syscall) ? rule.syscall : [rule.syscall])
          .filter((n) => HOT_SYSCALLS.has(n) && !(rule.args ?? []).every((c) => setidCreationCondition(n, c)));
        return hot.length && rule.args?.length ? [{ pointer: `/seccomp/rules/${i}`, message: `argument conditions on ${hot.join(', ')} run the filter on every call` }] : [];
      }),
  },
];
