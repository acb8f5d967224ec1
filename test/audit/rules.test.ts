// Each rule fires on a crafted policy and points, through `extends`, at the node that set the value.
import t from 'tap';
import { auditFile, auditPlan, planForAudit, RULES } from '../../src/audit/index.js';
import { loadPolicy } from '../../src/policy/load.js';
import { craft, positionOf, STRICT, strictStandalone, auditObject } from './fixtures/helpers.js';
import { CASES, ESCAPE_GROUPS_BODY, ON_SHIPPED } from './fixtures/cases.js';


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
  const onShipped = new Set(Object.keys(ON_SHIPPED));
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
  const { base, child, baseText } = craft(t.testdir(), STRICT, ESCAPE_GROUPS_BODY);
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
