// The exposure score: removing or weakening any isolation never lowers it.
import t from 'tap';
import { RULES } from '../../src/audit/index.js';
import { PolicyError } from '../../src/policy/errors.js';
import { ABSENT_VERSUS_WEAK, EXPOSURE_WEIGHTS } from '../../src/audit/weights.js';
import { levelOf } from '../../src/audit/score.js';
import type { Policy } from '../../src/policy/types.js';
import { auditObject, strictStandalone } from './fixtures/helpers.js';

type Tree = { [key: string]: unknown } | unknown[];

/** Every JSON pointer of a value, parents before children. */
function pointers(value: unknown, at = ''): string[] {
  if (value === null || typeof value !== 'object') return [];
  const keys = Array.isArray(value) ? value.map((_, i) => String(i)) : Object.keys(value);
  return keys.flatMap((k) => [`${at}/${k}`, ...pointers((value as Record<string, unknown>)[k], `${at}/${k}`)]);
}

function without(policy: Policy, pointer: string): Policy {
  const copy = structuredClone(policy) as unknown as Tree;
  const parts = pointer.split('/').slice(1);
  let node = copy as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) node = node[part] as Record<string, unknown>;
  const last = parts[parts.length - 1];
  if (Array.isArray(node)) node.splice(Number(last), 1);
  else delete node[last];
  return copy as unknown as Policy;
}

/** Deleting these grants less, not more: an empty allow-list of inputs allows no input. */
const ALLOW_LISTS = ['/filesystem/inputs/under'];
const grantsLessWhenDeleted = (pointer: string) => ALLOW_LISTS.some((a) => a === pointer || a.startsWith(pointer + '/') || pointer.startsWith(a + '/'));

t.test('deleting any section or field of strict never lowers the score', async (t) => {
  const dir = t.testdir();
  const strict = strictStandalone();
  const baseline = auditObject(`${dir}/strict.yaml`, strict);
  let audited = 0;
  for (const pointer of pointers(strict)) {
    let report;
    try {
      report = auditObject(`${dir}/mutated.yaml`, without(strict, pointer));
    } catch (err) {
      if (err instanceof PolicyError) continue; // e.g. `name` is required
      throw err;
    }
    audited++;
    if (grantsLessWhenDeleted(pointer)) {
      const lost = baseline.findings.filter((f) => !report.findings.some((g) => g.ruleId === f.ruleId)).map((f) => f.ruleId);
      t.same(lost.filter((id) => id !== 'STK-FS-004'), [], `deleting ${pointer} loses only the inputs finding`);
    } else {
      t.ok(report.score >= baseline.score, `deleting ${pointer}: ${baseline.score} → ${report.score}`);
    }
  }
  t.ok(audited > 100, `${audited} deletions audited`);
});

/** Weakenings of one field each, written to add to what earlier ones did. */
const WEAKENINGS: [string, (p: Policy) => void][] = [
  ['a writable host bind', (p) => { p.filesystem!.paths = [...(p.filesystem!.paths ?? []), { source: '/srv/cache', readonly: false }]; }],
  ["the host's /sys bound in", (p) => { p.filesystem!.paths = [...(p.filesystem!.paths ?? []), { source: '/sys', target: '/host-sys' }]; }],
  ['a home directory bound in', (p) => { p.filesystem!.paths = [...(p.filesystem!.paths ?? []), { source: '/home' }]; }],
  ['inputs from anywhere', (p) => { p.filesystem!.inputs = { under: ['/'] }; }],
  ['a writable root', (p) => { p.filesystem!.root = { readonly: false }; }],
  ['no fresh /proc', (p) => { p.proc = { mount: false }; }],
  ['/dev/fuse', (p) => { p.devices = [...(p.devices ?? []), 'fuse']; }],
  ['a pool of system UIDs', (p) => { p.users = { range: { first: 100, count: 10, gid: 100 } }; }],
  ['CAP_SYS_ADMIN kept', (p) => { p.capabilities = { ...p.capabilities, bounding: [...(p.capabilities?.bounding ?? []), 'CAP_SYS_ADMIN'] }; }],
  ['an ambient capability', (p) => { p.capabilities = { bounding: [...(p.capabilities?.bounding ?? []), 'CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'] }; }],
  ['no no_new_privs', (p) => { delete p.seccomp; delete p.landlock; p.no_new_privs = false; }],
  ['host network', (p) => { p.fixed_output = true; p.network = 'host'; }],
  ['slirp network', (p) => { p.fixed_output = true; p.network = 'slirp'; }],
  ['slirp with host loopback', (p) => { p.fixed_output = true; p.network = { mode: 'slirp', allow_host_loopback: true }; }],
  ['no seccomp', (p) => { delete p.seccomp; }],
  ['seccomp without x86 and x32', (p) => { p.seccomp!.architectures = ['native']; }],
  ['seccomp that only logs', (p) => { p.seccomp!.deny = []; p.seccomp!.rules = []; }],
  ['no Landlock', (p) => { delete p.landlock; }],
  ['best-effort Landlock', (p) => { p.landlock!.compat = 'best-effort'; }],
  ['Landlock writable everywhere', (p) => { p.landlock!.write = ['/']; }],
  ['no pids limit', (p) => { delete p.limits!.cgroup!.pids; }],
  ['no memory limit', (p) => { delete p.limits!.cgroup!.memory; }],
  ['oom_score_adj 0', (p) => { p.oom_score_adj = 0; }],
  ['no total timeout', (p) => { p.timeouts = { ...p.timeouts, total: 0 }; }],
  ['no silence timeout', (p) => { p.timeouts = { ...p.timeouts, max_silent: 0 }; }],
  ['a secret passed', (p) => { p.environment!.pass = ['GITHUB_TOKEN']; }],
  ['a host path in the environment', (p) => { p.environment!.set = { ...p.environment!.set, CACHE: '/root/cache' }; }],
];

t.test('weakening any field of strict raises the score', async (t) => {
  const dir = t.testdir();
  const baseline = auditObject(`${dir}/strict.yaml`, strictStandalone());
  for (const [what, weaken] of WEAKENINGS) {
    const policy = strictStandalone();
    weaken(policy);
    const report = auditObject(`${dir}/weak.yaml`, policy);
    t.ok(report.score > baseline.score, `${what}: ${baseline.score} → ${report.score}`);
  }
});

t.test('weakenings add up: each one more never lowers the score', async (t) => {
  const dir = t.testdir();
  const policy = strictStandalone();
  let previous = auditObject(`${dir}/p.yaml`, policy).score;
  // Order matters only where the language ties fields together (no_new_privs needs no seccomp/Landlock).
  for (const [what, weaken] of WEAKENINGS.filter(([w]) => !/slirp|no_new_privs|Landlock|seccomp/.test(w))) {
    weaken(policy);
    const score = auditObject(`${dir}/p.yaml`, policy).score;
    t.ok(score >= previous, `+ ${what}: ${previous} → ${score}`);
    previous = score;
  }
  t.equal(previous, 10, 'a sandbox with everything weakened scores 10');
});

t.test('the weight table', async (t) => {
  t.same(Object.keys(EXPOSURE_WEIGHTS).sort(), RULES.map((r) => r.id).sort(), 'one weight per rule, no stray weights');
  for (const [absent, weaknesses] of Object.entries(ABSENT_VERSUS_WEAK)) {
    const sum = weaknesses.reduce((s, id) => s + EXPOSURE_WEIGHTS[id], 0);
    t.ok(EXPOSURE_WEIGHTS[absent] >= sum - 1e-9, `${absent} (${EXPOSURE_WEIGHTS[absent]}) weighs at least its weaknesses together (${sum})`);
  }
  const concernRules = (prefix: string) => RULES.filter((r) => r.id.startsWith(prefix) && r.weight > 0).map((r) => r.id).sort();
  t.same(concernRules('STK-SEC-').filter((id) => id !== 'STK-SEC-001'), [...ABSENT_VERSUS_WEAK['STK-SEC-001']].sort(), 'every weighted seccomp weakness is covered by the absent rule');
  t.same(concernRules('STK-LL-').filter((id) => id !== 'STK-LL-001'), [...ABSENT_VERSUS_WEAK['STK-LL-001']].sort(), 'every weighted Landlock weakness is covered by the absent rule');
  for (const rule of RULES.filter((r) => r.severity === 'info')) t.equal(rule.weight, 0, `${rule.id} is advice and weighs nothing`);
});

t.test('levels follow systemd-analyze security', async (t) => {
  t.same([0, 0.1, 0.9, 1, 4.9, 5, 7.4, 7.5, 9, 10].map(levelOf), ['PERFECT', 'SAFE', 'SAFE', 'OK', 'OK', 'MEDIUM', 'MEDIUM', 'EXPOSED', 'UNSAFE', 'DANGEROUS']);
});
