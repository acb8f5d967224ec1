// stockade diff: every section's changes, marked weakening / strengthening / neutral.
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/diff.js';
import { diffPlans, type Change } from '../../src/audit/diff.js';
import { auditFile, DEFAULT_NOTE, planForAudit, RULES, type Finding } from '../../src/audit/index.js';
import { CASES as RULE_CASES, ESCAPE_GROUPS_BODY, ON_SHIPPED } from './fixtures/cases.js';
import { loadPolicy } from '../../src/policy/load.js';
import type { Plan } from '../../src/plan/types.js';
import { FIXED_OUTPUT, GUIX_DEFAULT, POLICIES, STRICT, craft, run } from './fixtures/helpers.js';

const HOST_TOOLCHAIN = join(POLICIES, 'host-toolchain.yaml');

const strictPlan = (): Plan => planForAudit(loadPolicy(STRICT));

/** Diffs strict against strict changed by `change`; returns the changes of `section`. */
function changesOf(section: string, change: (p: Plan) => void): Change[] {
  const after = strictPlan();
  change(after);
  return diffPlans(strictPlan(), after).filter((c) => c.section === section);
}

const CASES: [string, string, (p: Plan) => void, 'weakening' | 'strengthening' | 'neutral', RegExp][] = [
  ['mounts', 'bind added', (p) => p.mounts.push({ source: { kind: 'host', path: '/srv' }, target: '/srv', type: 'bind', readonly: true, nosuid: true, nodev: true, noexec: false, role: 'path' }), 'weakening', /\/srv added/],
  ['mounts', 'tmpfs removed', (p) => { p.mounts = p.mounts.filter((m) => m.target !== '/tmp'); }, 'neutral', /\/tmp removed/],
  ['mounts', 'readonly flip', (p) => { p.mounts.find((m) => m.role === 'build-dir')!.readonly = true; }, 'strengthening', /writable → read-only/],
  ['mounts', 'nosuid dropped', (p) => { p.mounts.find((m) => m.target === '/tmp')!.nosuid = false; }, 'weakening', /nosuid dropped/],
  ['mounts', 'nodev dropped', (p) => { p.mounts.find((m) => m.target === '/proc')!.nodev = false; }, 'weakening', /nodev dropped/],
  ['devices', 'device added', (p) => p.devices.push({ name: 'fuse', kind: 'bind', source: '/dev/fuse', optional: false }), 'weakening', /\/dev\/fuse added/],
  ['devices', 'device removed', (p) => { p.devices = p.devices.filter((d) => d.name !== 'kvm'); }, 'strengthening', /\/dev\/kvm removed/],
  ['etc', 'host file added', (p) => p.etc.push({ path: '/etc/services', hostSource: '/etc/services', mode: 0o444 }), 'weakening', /the host's \/etc\/services/],
  ['etc', 'generated content', (p) => { p.etc[0].content = ['x']; }, 'neutral', /content changed/],
  ['network', 'mode', (p) => { p.network.mode = 'slirp'; }, 'weakening', /none → slirp/],
  ['network', 'host loopback', (p) => { p.network.allowHostLoopback = true; }, 'weakening', /reachable/],
  ['network', 'vsock', (p) => { p.network.vsock = true; }, 'weakening', /vsock open/],
  ['network', 'hostname', (p) => { p.hostname = 'box'; }, 'neutral', /localhost → box/],
  ['environment', 'secret added', (p) => { p.environment.GITHUB_TOKEN = 'x'; }, 'weakening', /GITHUB_TOKEN added/],
  ['environment', 'value changed', (p) => { p.environment.PATH = '/bin'; }, 'neutral', /PATH: \/path-not-set → \/bin/],
  ['capabilities', 'bounding added', (p) => p.capabilities.bounding.push('CAP_SYS_ADMIN'), 'weakening', /bounding: CAP_SYS_ADMIN added/],
  ['capabilities', 'ambient added', (p) => p.capabilities.ambient.push('CAP_NET_RAW'), 'weakening', /ambient: CAP_NET_RAW added/],
  ['no_new_privs', 'off', (p) => { p.noNewPrivs = false; }, 'weakening', /true → false/],
  ['seccomp', 'removed', (p) => { p.seccomp = null; }, 'weakening', /filter removed/],
  ['seccomp', 'default action', (p) => { p.seccomp!.defaultAction = { kind: 'kill_process' }; }, 'strengthening', /allow → kill_process/],
  ['seccomp', 'architecture removed', (p) => { p.seccomp!.architectures = ['x86_64', 'x86']; }, 'weakening', /x32 removed/],
  ['seccomp', 'rule removed', (p) => { p.seccomp!.rules = p.seccomp!.rules.filter((r) => r.syscall !== 'bpf'); }, 'weakening', /rule removed: errno EPERM bpf/],
  ['seccomp', 'rule added', (p) => p.seccomp!.rules.push({ syscall: 'acct', action: { kind: 'kill_process' }, args: [], optional: false }), 'strengthening', /rule added: kill_process acct/],
  ['landlock', 'removed', (p) => { p.landlock = null; }, 'weakening', /Landlock removed/],
  ['landlock', 'compat', (p) => { p.landlock!.compat = 'best-effort'; }, 'weakening', /require → best-effort/],
  ['landlock', 'write access added', (p) => p.landlock!.paths.push({ path: '/home', access: ['write'] }), 'weakening', /\/home access: write added/],
  ['landlock', 'scope removed', (p) => { p.landlock!.scopes = ['signal']; }, 'weakening', /abstract-unix-socket removed/],
  ['limits', 'pids raised', (p) => { p.limits.cgroup.pids = 100000; }, 'weakening', /pids: 2048 → 100000/],
  ['limits', 'memory removed', (p) => { delete p.limits.cgroup.memoryBytes; }, 'weakening', /memory bytes: \d+ → none/],
  ['limits', 'rlimit lowered', (p) => { p.limits.rlimits.nofile = { soft: 1024, hard: 8192 }; }, 'strengthening', /nofile soft: 4096 → 1024/],
  ['timeouts', 'total never', (p) => { p.timeouts.totalSeconds = 0; }, 'weakening', /86400 → 0 \(none\)/],
  ['timeouts', 'silence shorter', (p) => { p.timeouts.maxSilentSeconds = 60; }, 'strengthening', /3600 → 60/],
  ['identity', 'supplementary groups', (p) => { p.identity.supplementaryGroups = 'none'; }, 'strengthening', /pool → none/],
  ['identity', 'pool of system UIDs', (p) => { p.identity.pool = { kind: 'range', first: 100, count: 10, gid: 100 }; }, 'weakening', /group guixbuild → UIDs 100-109/],
  ['namespaces', 'net dropped', (p) => { p.namespaces = p.namespaces.filter((n) => n !== 'net'); }, 'weakening', /net removed/],
  ['root', 'writable', (p) => { p.root.readonly = false; }, 'weakening', /read-only → writable/],
  ['personality', 'flag added', (p) => p.personality.push('READ_IMPLIES_EXEC'), 'weakening', /READ_IMPLIES_EXEC added/],
  ['personality', 'ASLR back', (p) => { p.personality = []; }, 'strengthening', /ADDR_NO_RANDOMIZE removed/],
  ['outputs', 'owner not root', (p) => { p.outputs.owner = { uid: 999, gid: 999 }; }, 'weakening', /owner 0:0 → 999:999/],
  ['oom_score_adj', 'lowered', (p) => { p.oomScoreAdj = 0; }, 'weakening', /1000 → 0/],
];

for (const [section, what, change, effect, description] of CASES) {
  t.test(`${section}: ${what}`, async (t) => {
    const changes = changesOf(section, change);
    t.equal(changes.length, 1, JSON.stringify(changes));
    t.match(changes[0], { effect, description });
  });
}

t.test('the same Plan: no change', async (t) => {
  t.same(diffPlans(strictPlan(), strictPlan()), []);
});

t.test('the same sandbox written differently: no change (Plans are compared, not YAML)', async (t) => {
  const { base } = craft(t.testdir(), STRICT, 'hostname: localhost\nno_new_privs: true\n');
  const { code, stdout } = await run(main, [STRICT, base]);
  t.equal(code, 0);
  t.match(stdout, /no change to the sandbox/);
});

t.test('CLI: weakening exits 1 with scores before and after; strengthening exits 0', async (t) => {
  const weaker = await run(main, [STRICT, GUIX_DEFAULT]);
  t.equal(weaker.code, 1);
  t.match(weaker.stdout, /exposure 0\.2 SAFE → 4\.9 OK/);
  t.match(weaker.stdout, /- weakening +seccomp: filter removed/);
  const stronger = await run(main, [GUIX_DEFAULT, STRICT]);
  t.equal(stronger.code, 0);
  t.match(stronger.stdout, /0 weakening, \d+ strengthening/);
});

t.test('CLI --json', async (t) => {
  const { code, stdout } = await run(main, ['--json', GUIX_DEFAULT, FIXED_OUTPUT]);
  t.equal(code, 1);
  const json = JSON.parse(stdout);
  t.match(json, { old: { policy: 'guix-default', score: 4.9 }, new: { policy: 'fixed-output', score: 6.4 }, weakenings: 4 });
  t.ok(json.changes.some((c: Change) => c.section === 'network' && c.effect === 'weakening'));
});

t.test('CLI usage and invalid policies', async (t) => {
  t.equal((await run(main, [STRICT])).code, 2);
  const { base } = craft(t.testdir(), STRICT, 'devices: [floppy]\n');
  const bad = await run(main, [STRICT, base]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /base\.yaml:4:/);
});

t.test('guix-default → host-toolchain (inputs.under widened by !append): a weakening, as audit rates it', async (t) => {
  const { code, stdout } = await run(main, [GUIX_DEFAULT, HOST_TOOLCHAIN]);
  t.equal(code, 1);
  t.match(stdout, /- weakening +filesystem: inputs\.under: \/etc\/alternatives added/);
  t.match(stdout, /- weakening +audit: STK-FS-005 \(high\): inputs may come from the host's \/etc\/alternatives/);
  t.notMatch(stdout, /no change to the sandbox/);
  const back = await run(main, [HOST_TOOLCHAIN, GUIX_DEFAULT]);
  t.equal(back.code, 0);
  t.match(back.stdout, /\+ strengthening filesystem: inputs\.under: \/etc\/alternatives removed/);
});

t.test('outputs.under widened: a weakening; a prefix beneath one already allowed changes nothing', async (t) => {
  const wider = craft(t.testdir(), GUIX_DEFAULT, 'filesystem:\n  outputs:\n    under: !append [/srv/out]\n');
  t.match(diffPlans(planForAudit(loadPolicy(GUIX_DEFAULT)), planForAudit(loadPolicy(wider.child))), [{ section: 'filesystem', effect: 'weakening', description: 'outputs.under: /srv/out added' }]);
  const same = planForAudit(loadPolicy(GUIX_DEFAULT));
  const inner = structuredClone(same);
  inner.build.inputsUnder.push(`${same.build.inputsUnder[0]}/sub`);
  t.same(diffPlans(same, inner), []);
});

/** Every rule, with a pair of policies the rule's finding is new in. */
function pairs(dir: (name: string) => string): { rule: string; from: string; to: string }[] {
  const crafted = RULE_CASES.map((c, i) => ({ rule: c.rule, from: c.parent, to: craft(dir(`case-${i}`), c.parent, c.body).child }));
  const escapes = craft(dir('escapes'), STRICT, ESCAPE_GROUPS_BODY).child;
  const escapeGroups = RULES.filter((r) => /^STK-SEC-0[12]\d$/.test(r.id)).map((r) => ({ rule: r.id, from: STRICT, to: escapes }));
  const shipped = Object.entries(ON_SHIPPED).map(([rule, { from, to }]) => ({ rule, from, to }));
  return [...crafted, ...escapeGroups, ...shipped];
}

t.test('diff and audit agree over every audit rule: a new finding of a weighed rule is a weakening', async (t) => {
  const root = t.testdir();
  const dir = (name: string) => {
    mkdirSync(join(root, name));
    return join(root, name);
  };
  // strict already has the default supplementary groups: here it is the one that adds them.
  const noGroups = craft(dir('no-groups'), STRICT, 'users:\n  supplementary_groups: none\n').child;
  const text = (f: Finding) => f.message.replace(DEFAULT_NOTE, '');
  const checked = new Set<string>();
  for (const { rule, from, to } of [...pairs(dir), { rule: 'STK-ID-003', from: noGroups, to: STRICT }]) {
    const weight = RULES.find((r) => r.id === rule)!.weight;
    const old = auditFile(from);
    const now = auditFile(to);
    const fresh = now.findings.filter((f) => f.ruleId === rule && !old.findings.some((o) => o.ruleId === rule && text(o) === text(f)));
    if (!fresh.length) continue;
    checked.add(rule);
    const { code, stdout } = await run(main, ['--json', from, to]);
    const json = JSON.parse(stdout) as { changes: Change[]; weakenings: number };
    const ours = json.changes.filter((c) => c.section === 'audit' && c.description.startsWith(`${rule} `));
    for (const f of fresh) {
      const shown = ours.find((c) => c.description.includes(text(f)));
      t.equal(shown?.effect, weight > 0 ? 'weakening' : 'neutral', `${rule}${weight > 0 ? '' : ' (weight 0: advice)'}: diff shows audit's new finding '${text(f)}'`);
    }
    if (weight > 0) t.equal(code, 1, `${rule}: diff exits 1`);
    if (now.score > old.score) t.ok(json.weakenings > 0 && code === 1, `${rule}: a higher score is a weakening`);
  }
  t.same(RULES.map((r) => r.id).filter((id) => !checked.has(id)), [], 'every rule had a pair its finding is new in');
});
