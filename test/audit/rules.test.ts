// Each rule fires on a crafted policy and points, through `extends`, at the node that set the value.
import t from 'tap';
import { auditFile, auditPlan, planForAudit, RULES } from '../../src/audit/index.js';
import { loadPolicy } from '../../src/policy/load.js';
import { craft, FIXED_OUTPUT, GUIX_DEFAULT, positionOf, STRICT, strictStandalone, auditObject } from './fixtures/helpers.js';

interface Case {
  rule: string;
  /** The policy base.yaml extends. */
  parent: string;
  body: string;
  /** Text in base.yaml the finding must point at, and how far into it. */
  needle: string;
  offset?: number;
  message?: RegExp;
}

const CASES: Case[] = [
  { rule: 'STK-FS-001', parent: STRICT, body: 'filesystem:\n  paths:\n    - { source: /srv/cache, target: /cache, readonly: false }\n', needle: 'false' },
  { rule: 'STK-FS-002', parent: STRICT, body: 'filesystem:\n  paths:\n    - { source: /home/alice/.ssh }\n', needle: '/home/alice/.ssh' },
  { rule: 'STK-FS-002', parent: STRICT, body: 'filesystem:\n  paths:\n    - { source: /var, target: /hostvar }\n', needle: '/var', message: /overlaps/ },
  { rule: 'STK-FS-003', parent: STRICT, body: 'filesystem:\n  paths:\n    - { source: /sys/kernel, target: /host-sys }\n', needle: '/sys/kernel' },
  { rule: 'STK-FS-003', parent: STRICT, body: 'filesystem:\n  paths:\n    - { source: /proc, target: /hostproc }\n', needle: '/proc' },
  { rule: 'STK-FS-004', parent: STRICT, body: 'filesystem:\n  inputs: { under: [/gnu/store, /usr] }\n', needle: '[/gnu', message: /\/usr/ },
  { rule: 'STK-FS-005', parent: STRICT, body: 'filesystem:\n  inputs: { under: [/gnu/store, /home] }\n', needle: '/home' },
  { rule: 'STK-FS-006', parent: STRICT, body: 'filesystem:\n  root: { readonly: false }\n', needle: 'false' },
  { rule: 'STK-FS-007', parent: STRICT, body: 'proc: { mount: false }\n', needle: 'false' },
  { rule: 'STK-OUT-001', parent: STRICT, body: 'outputs: { owner: { uid: 999, gid: 0 } }\n', needle: '999', message: /999:0, which can change them/ },
  { rule: 'STK-DEV-001', parent: STRICT, body: 'devices: ["null", zero, fuse]\n', needle: 'fuse' },
  { rule: 'STK-DEV-001', parent: STRICT, body: 'devices: ["null", { name: net/tun }]\n', needle: '{ name' },
  { rule: 'STK-ID-001', parent: STRICT, body: 'users:\n  range: { first: 500, count: 10, gid: 30000 }\n', needle: '500' },
  { rule: 'STK-ID-001', parent: STRICT, body: 'users:\n  range: { first: 30001, count: 10, gid: 100 }\n', needle: '100' },
  { rule: 'STK-ID-001', parent: STRICT, body: 'users:\n  range: { first: 65000, count: 1000, gid: 30000 }\n', needle: '1000', message: /nobody/ },
  { rule: 'STK-ID-002', parent: STRICT, body: 'users:\n  range: { first: 30001, count: 8, gid: 30000 }\n', needle: '{ first', message: /stockade pool check/ },
  { rule: 'STK-ID-003', parent: STRICT, body: 'users:\n  supplementary_groups: pool\n', needle: 'pool' },
  { rule: 'STK-CAP-001', parent: STRICT, body: 'capabilities: { bounding: [CAP_CHOWN, CAP_SYS_ADMIN] }\n', needle: 'CAP_CHOWN' },
  { rule: 'STK-CAP-002', parent: STRICT, body: 'capabilities: { bounding: [CAP_NET_BIND_SERVICE], ambient: [CAP_NET_BIND_SERVICE] }\n', needle: 'ambient: [', offset: 10 },
  { rule: 'STK-CAP-003', parent: STRICT, body: 'capabilities: { bounding: [CAP_NET_BIND_SERVICE] }\n', needle: 'CAP_NET_BIND_SERVICE' },
  { rule: 'STK-CAP-004', parent: GUIX_DEFAULT, body: 'no_new_privs: false\n', needle: 'false' },
  { rule: 'STK-NET-001', parent: GUIX_DEFAULT, body: 'fixed_output: true\nnetwork: host\n', needle: 'host' },
  { rule: 'STK-NET-002', parent: FIXED_OUTPUT, body: 'network: { mode: slirp, allow_host_loopback: true }\n', needle: 'true' },
  { rule: 'STK-NET-003', parent: GUIX_DEFAULT, body: 'fixed_output: true\nnetwork: slirp\n', needle: 'slirp' },
  { rule: 'STK-NET-004', parent: STRICT, body: 'hostname: builder\n', needle: 'builder' },
  { rule: 'STK-NET-005', parent: STRICT, body: 'network: { mode: none, vsock: true }\n', needle: 'true', message: /AF_VSOCK/ },
  { rule: 'STK-SEC-002', parent: STRICT, body: 'seccomp:\n  architectures: [native, x86]\n', needle: '[native', message: /x32/ },
  { rule: 'STK-SEC-030', parent: STRICT, body: 'seccomp:\n  rules:\n    - { syscall: [openat, mkdir], action: errno, args: [{ index: 0, op: eq, value: 5 }] }\n', needle: '{ syscall', message: /openat/ },
  { rule: 'STK-LL-002', parent: STRICT, body: 'landlock: { compat: best-effort }\n', needle: 'best-effort' },
  { rule: 'STK-LL-003', parent: STRICT, body: 'landlock: { write: [/tmp, /] }\n', needle: '/]' },
  { rule: 'STK-LIM-001', parent: GUIX_DEFAULT, body: 'limits: { cgroup: { memory: 8G } }\n', needle: '{ memory' },
  { rule: 'STK-LIM-002', parent: GUIX_DEFAULT, body: 'limits: { cgroup: { pids: 100 } }\n', needle: '{ pids' },
  { rule: 'STK-LIM-003', parent: STRICT, body: 'oom_score_adj: -500\n', needle: '-500' },
  { rule: 'STK-TIME-001', parent: STRICT, body: 'timeouts: { total: 0 }\n', needle: '0 }' },
  { rule: 'STK-TIME-002', parent: STRICT, body: 'timeouts: { max_silent: 0 }\n', needle: '0 }' },
  { rule: 'STK-ENV-001', parent: STRICT, body: 'environment:\n  set: { GITHUB_TOKEN: abc }\n', needle: 'abc' },
  { rule: 'STK-ENV-001', parent: STRICT, body: 'environment:\n  pass: [http_proxy, SSH_AUTH_SOCK]\n', needle: 'SSH_AUTH_SOCK' },
  { rule: 'STK-ENV-001', parent: STRICT, body: 'environment:\n  pass: [AWS_PROFILE]\n', needle: 'AWS_PROFILE' },
  { rule: 'STK-ENV-002', parent: STRICT, body: 'environment:\n  set: { CACHE: "/tmp:/home/alice/cache" }\n', needle: '"/tmp' },
];

for (const c of CASES) {
  t.test(`${c.rule} on ${c.body.trim().split('\n').pop()}`, async (t) => {
    const { base, child, baseText } = craft(t.testdir(), c.parent, c.body);
    const findings = auditFile(child).findings.filter((f) => f.ruleId === c.rule);
    t.ok(findings.length > 0, `${c.rule} fires`);
    const here = findings.find((f) => f.file === base);
    t.ok(here, 'points into the file that set the value');
    t.match(here, positionOf(baseText, c.needle, c.offset ?? 0), 'at the node that causes it');
    if (c.message) t.match(here!.message, c.message);
  });
}

t.test('every rule has a crafted case or fires on a shipped policy', async (t) => {
  const onShipped = new Set(['STK-LIM-001', 'STK-LIM-002', 'STK-LIM-004', 'STK-LIM-005', 'STK-SEC-001', 'STK-LL-001', 'STK-NET-003', 'STK-FS-004', 'STK-ID-002', 'STK-ID-003']);
  const escapeGroups = RULES.filter((r) => /^STK-SEC-0[12]\d$/.test(r.id)).map((r) => r.id);
  const covered = new Set([...CASES.map((c) => c.rule), ...onShipped, ...escapeGroups]);
  t.same(RULES.map((r) => r.id).filter((id) => !covered.has(id)), []);
});

t.test('host network outside a fixed-output policy (refused by the loader, caught on the Plan)', async (t) => {
  const loaded = loadPolicy(STRICT);
  const plan = planForAudit(loaded);
  plan.network.mode = 'host';
  const finding = auditPlan(plan, loaded, STRICT).findings.find((f) => f.ruleId === 'STK-NET-001');
  t.match(finding, { severity: 'critical', message: /outside a fixed-output policy/ });
});

const ESCAPE_LABELS: Record<string, string[]> = {
  'STK-SEC-010': ['unshare', 'setns', 'clone3', 'clone(CLONE_NEWUSER)', 'clone(CLONE_NEWTIME)'],
  'STK-SEC-011': ['mount', 'umount2', 'pivot_root', 'move_mount', 'fsopen', 'mount_setattr'],
  'STK-SEC-012': ['add_key', 'request_key', 'keyctl'],
  'STK-SEC-013': ['bpf'],
  'STK-SEC-014': ['userfaultfd'],
  'STK-SEC-015': ['io_uring_setup', 'io_uring_enter', 'io_uring_register'],
  'STK-SEC-016': ['perf_event_open'],
  'STK-SEC-017': ['ptrace', 'process_vm_readv', 'process_vm_writev'],
  'STK-SEC-018': ['kexec_load', 'kexec_file_load'],
  'STK-SEC-019': ['init_module', 'finit_module', 'delete_module'],
  'STK-SEC-020': ['chmod(S_ISUID)', 'fchmod(S_ISGID)', 'fchmodat(S_ISUID)', 'fchmodat2(S_ISGID)'],
  'STK-SEC-021': ['ioctl(TIOCSTI)', 'ioctl(TIOCLINUX)'],
};

t.test('a deny list without the escape syscalls: one finding per group, naming them, at seccomp.deny', async (t) => {
  const { base, child, baseText } = craft(t.testdir(), STRICT, 'seccomp:\n  deny: [acct]\n  rules: []\n');
  const findings = auditFile(child).findings.filter((f) => /^STK-SEC-0[12]\d$/.test(f.ruleId));
  t.same(findings.map((f) => f.ruleId).sort(), Object.keys(ESCAPE_LABELS).sort());
  for (const f of findings) {
    t.match(f, { file: base, ...positionOf(baseText, '[acct]') }, `${f.ruleId} points at seccomp.deny`);
    for (const label of ESCAPE_LABELS[f.ruleId]) t.ok(f.message.includes(label), `${f.ruleId} names ${label}`);
  }
});

t.test('one missing name: only its group fires, with partial weight', async (t) => {
  const policy = strictStandalone();
  policy.seccomp!.deny = policy.seccomp!.deny!.filter((n) => n !== 'keyctl');
  const report = auditObject(`${t.testdir()}/p.yaml`, policy);
  const seccomp = report.findings.filter((f) => f.concern === 'seccomp');
  t.same(seccomp.map((f) => f.ruleId), ['STK-SEC-012']);
  t.match(seccomp[0].message, /lets through keyctl$/);
  t.ok(seccomp[0].points > 0 && seccomp[0].points < RULES.find((r) => r.id === 'STK-SEC-012')!.weight);
});

t.test('an ioctl rule with eq on TIOCSTI does not count: the kernel ignores the high bits', async (t) => {
  const policy = strictStandalone();
  policy.seccomp!.rules = policy.seccomp!.rules!.filter((r) => r.syscall !== 'ioctl');
  policy.seccomp!.rules.push({ syscall: 'ioctl', action: 'errno', args: [{ index: 1, op: 'eq', value: 0x5412 }] });
  const report = auditObject(`${t.testdir()}/p.yaml`, policy);
  t.match(report.findings.find((f) => f.ruleId === 'STK-SEC-021'), { message: /ioctl\(TIOCSTI\), ioctl\(TIOCLINUX\)/ });
});

t.test('clone namespace rules must cover the exact flag bit', async (t) => {
  const policy = strictStandalone();
  policy.seccomp!.rules = policy.seccomp!.rules!.map((r) =>
    r.syscall === 'clone' && r.args?.[0].mask === 0x10000000 ? { ...r, args: [{ index: 0, op: 'masked_eq' as const, mask: 0x30000000, value: 0x30000000 }] } : r,
  );
  const report = auditObject(`${t.testdir()}/p.yaml`, policy);
  const finding = report.findings.find((f) => f.ruleId === 'STK-SEC-010');
  t.match(finding?.message, /lets through clone\(CLONE_NEWUSER\)$/);
});

t.test('an allow-list filter (default errno, nothing allowed) leaves no escape open', async (t) => {
  const { child } = craft(t.testdir(), STRICT, 'seccomp:\n  default: errno\n  deny: []\n  rules: []\n');
  t.same(auditFile(child).findings.filter((f) => f.concern === 'seccomp'), []);
});

t.test('an allow-list that allows unshare opens the namespace group', async (t) => {
  const { child } = craft(t.testdir(), STRICT, 'seccomp:\n  default: errno\n  deny: []\n  rules: [{ syscall: unshare, action: allow }]\n');
  t.match(auditFile(child).findings.find((f) => f.ruleId === 'STK-SEC-010')?.message, /lets through unshare$/);
});

t.test('spec_allow letting a spec set LD_PRELOAD is fine inside a sandbox', async (t) => {
  const { child } = craft(t.testdir(), STRICT, 'environment:\n  spec_allow: [LD_PRELOAD, "*"]\n  set: { PATH: /path-not-set, HOME: /homeless-shelter }\n');
  t.same(auditFile(child).findings.filter((f) => f.concern === 'environment'), []);
});

t.test('read-only binds of ordinary host paths and store inputs are quiet', async (t) => {
  const { child } = craft(t.testdir(), STRICT, 'filesystem:\n  paths: [{ source: /etc/ssl/certs }, { source: /usr/bin/env, optional: true }]\n  inputs: { under: [/gnu/store] }\n');
  t.same(auditFile(child).findings.filter((f) => f.concern === 'filesystem'), []);
});
