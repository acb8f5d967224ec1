// `extends`: how a policy refines another (maps merge, lists replace unless !append, users.group
// and users.range exclude each other), where a base is looked up, cycles, and where each merged
// value came from.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadPolicy, SHIPPED_POLICIES_DIR } from '../../src/policy/load.js';
import { formatDiagnostic, PolicyError } from '../../src/policy/errors.js';
import { planFromFile } from '../../src/plan/index.js';

const root = mkdtempSync(join(tmpdir(), 'stockade-extends-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

let cases = 0;
/** A fresh directory holding these files (paths relative to it); returns the directory. */
function files(entries: Record<string, string>): string {
  const dir = join(root, String(cases++));
  for (const [name, text] of Object.entries(entries)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** The diagnostics a load fails with, formatted; throws (failing the test) if it loads. */
function failure(file: string): string[] {
  try {
    loadPolicy(file);
  } catch (err) {
    if (err instanceof PolicyError) return err.diagnostics.map(formatDiagnostic);
    throw err;
  }
  throw new Error(`${file} loaded, expected a PolicyError`);
}

const BASE = `stockade: 1
name: base
users:
  group: guixbuild
  state_dir: /var/lib/stockade/pool
  passwd: { name: nixbld, gecos: Nix build user }
devices: ["null", zero]
environment:
  set: { PATH: /path-not-set, HOME: /homeless-shelter }
  pass: [http_proxy]
hostname: localhost
`;

t.test('maps merge key by key; a child overrides a nested scalar', async (t) => {
  const dir = files({
    'base.yaml': BASE,
    'child.yaml': 'stockade: 1\nname: child\nextends: base\nusers:\n  passwd: { gecos: Builder }\nenvironment:\n  set: { HOME: /home/build }\n',
  });
  const { policy } = loadPolicy(join(dir, 'child.yaml'));
  t.strictSame(policy.users, {
    group: 'guixbuild',
    state_dir: '/var/lib/stockade/pool',
    passwd: { name: 'nixbld', gecos: 'Builder' },
  });
  t.strictSame(policy.environment, { set: { PATH: '/path-not-set', HOME: '/home/build' }, pass: ['http_proxy'] });
  t.equal(policy.name, 'child');
  t.equal(policy.extends, 'base', 'the merged policy names the base the file asked for');
});

t.test('lists replace the inherited list', async (t) => {
  const dir = files({ 'base.yaml': BASE, 'child.yaml': 'stockade: 1\nname: child\nextends: base\ndevices: [tty]\nenvironment: { pass: [] }\n' });
  const { policy } = loadPolicy(join(dir, 'child.yaml'));
  t.strictSame(policy.devices, ['tty']);
  t.strictSame(policy.environment?.pass, []);
});

t.test('!append extends the inherited list', async (t) => {
  const dir = files({
    'base.yaml': BASE,
    'child.yaml': 'stockade: 1\nname: child\nextends: base\ndevices: !append [tty, { name: kvm, optional: true }]\nenvironment:\n  pass: !append [https_proxy]\n  build_dir_vars: !append [PWD]\n',
  });
  const loaded = loadPolicy(join(dir, 'child.yaml'));
  t.strictSame(loaded.policy.devices, ['null', 'zero', 'tty', { name: 'kvm', optional: true }]);
  t.strictSame(loaded.policy.environment?.pass, ['http_proxy', 'https_proxy']);
  t.strictSame(loaded.policy.environment?.build_dir_vars, ['PWD'], 'nothing inherited: the list as written');
  // Appended items keep their own positions; inherited ones keep the base's.
  t.strictSame(loaded.locate('/devices/0'), { file: join(dir, 'base.yaml'), line: 7, col: 11 });
  t.strictSame(loaded.locate('/devices/3/name'), { file: join(dir, 'child.yaml'), line: 4, col: 32 });
});

t.test('!append across three files accumulates', async (t) => {
  const dir = files({
    'base.yaml': BASE,
    'mid.yaml': 'stockade: 1\nname: mid\nextends: base\ndevices: !append [tty]\n',
    'top.yaml': 'stockade: 1\nname: top\nextends: mid\ndevices: !append [fd]\n',
  });
  t.strictSame(loadPolicy(join(dir, 'top.yaml')).policy.devices, ['null', 'zero', 'tty', 'fd']);
});

t.test('users.group and users.range exclude each other across files', async (t) => {
  const range = 'range: { first: 30001, count: 8, gid: 30000 }';
  const dir = files({
    'base.yaml': BASE,
    'range.yaml': `stockade: 1\nname: r\nextends: base\nusers: { ${range} }\n`,
    'group.yaml': 'stockade: 1\nname: g\nextends: range.yaml\nusers: { group: builders }\n',
    'both.yaml': `stockade: 1\nname: b\nextends: base\nusers: { group: builders, ${range} }\n`,
  });
  const ranged = loadPolicy(join(dir, 'range.yaml'));
  t.strictSame(ranged.policy.users, {
    state_dir: '/var/lib/stockade/pool',
    passwd: { name: 'nixbld', gecos: 'Nix build user' },
    range: { first: 30001, count: 8, gid: 30000 },
  });
  t.notOk(ranged.origins.has('/users/group'), 'the dropped group leaves no origin behind');
  t.strictSame(loadPolicy(join(dir, 'group.yaml')).policy.users?.group, 'builders');
  t.notOk('range' in loadPolicy(join(dir, 'group.yaml')).policy.users!, 'a group set below drops the inherited range');
  // Both in one file is a mistake even when the file extends another.
  t.strictSame(failure(join(dir, 'both.yaml')), [`${join(dir, 'both.yaml')}:4:27: users: give either group or range, not both`]);
});

t.test('the chain is recorded in the Plan, relative paths kept relative', async (t) => {
  const dir = files({
    'policies/a.yaml': 'stockade: 1\nname: a\nextends: ../shared/b.yaml\n',
    'shared/b.yaml': 'stockade: 1\nname: b\nextends: c\n',
    'shared/c.yaml': 'stockade: 1\nname: c\nhostname: build\n',
  });
  const cwd = process.cwd();
  process.chdir(dir);
  t.teardown(() => process.chdir(cwd));
  const plan = planFromFile('policies/a.yaml');
  t.strictSame(plan.policy.chain, ['policies/a.yaml', 'shared/b.yaml', 'shared/c.yaml']);
  t.equal(plan.policy.file, 'policies/a.yaml');
  t.equal(plan.policy.name, 'a');
  t.equal(plan.hostname, 'build');
});

t.test('lookup by name: the file\'s own directory first, then the shipped policies', async (t) => {
  const child = 'stockade: 1\nname: child\nextends: guix-default\n';
  const local = files({ 'child.yaml': child, 'guix-default.yaml': 'stockade: 1\nname: local-default\nhostname: shadowed\n' });
  const shadowed = loadPolicy(join(local, 'child.yaml'));
  t.strictSame(shadowed.chain, [join(local, 'child.yaml'), join(local, 'guix-default.yaml')]);
  t.equal(shadowed.policy.hostname, 'shadowed');

  const alone = files({ 'child.yaml': child });
  const shipped = loadPolicy(join(alone, 'child.yaml'));
  t.strictSame(shipped.chain, [join(alone, 'child.yaml'), join(SHIPPED_POLICIES_DIR, 'guix-default.yaml')]);
  t.equal(shipped.policy.users?.group, 'guixbuild');

  const elsewhere = files({ 'lib/guix-default.yaml': 'stockade: 1\nname: lib-default\nhostname: from-lib\n' });
  const withDir = loadPolicy(join(alone, 'child.yaml'), { policiesDir: join(elsewhere, 'lib') });
  t.strictSame(withDir.chain, [join(alone, 'child.yaml'), join(elsewhere, 'lib', 'guix-default.yaml')]);
  t.equal(withDir.policy.hostname, 'from-lib');
});

t.test('lookup by path: relative to the extending file, or absolute', async (t) => {
  const dir = files({
    'sub/child.yaml': 'stockade: 1\nname: child\nextends: ../bases/base.yml\n',
    'bases/base.yml': BASE,
  });
  const loaded = loadPolicy(join(dir, 'sub/child.yaml'));
  t.strictSame(loaded.chain, [join(dir, 'sub/child.yaml'), join(dir, 'bases/base.yml')]);
  const abs = files({ 'child.yaml': `stockade: 1\nname: child\nextends: ${join(dir, 'bases/base.yml')}\n` });
  t.strictSame(loadPolicy(join(abs, 'child.yaml')).chain, [join(abs, 'child.yaml'), join(dir, 'bases/base.yml')]);
});

t.test('a missing base: the message lists where it looked', async (t) => {
  const dir = files({
    'byname.yaml': 'stockade: 1\nname: n\nextends: nosuch\n',
    'bypath.yaml': 'stockade: 1\nname: p\nextends: ./lib/nosuch.yaml\n',
  });
  t.strictSame(failure(join(dir, 'byname.yaml')), [
    `${join(dir, 'byname.yaml')}:3:10: extends: cannot find policy 'nosuch' (looked for ${join(dir, 'nosuch.yaml')}, ${join(SHIPPED_POLICIES_DIR, 'nosuch.yaml')})`,
  ]);
  t.strictSame(failure(join(dir, 'bypath.yaml')), [
    `${join(dir, 'bypath.yaml')}:3:10: extends: cannot find policy './lib/nosuch.yaml' (looked for ${join(dir, 'lib/nosuch.yaml')})`,
  ]);
  t.strictSame(failure(join(dir, 'absent.yaml')), [`${join(dir, 'absent.yaml')}:1:1: cannot read policy: no such file`]);
});

t.test('cycles are refused with the chain printed', async (t) => {
  const dir = files({
    'self.yaml': 'stockade: 1\nname: self\nextends: self\n',
    'a.yaml': 'stockade: 1\nname: a\nextends: b\n',
    'b.yaml': 'stockade: 1\nname: b\nhostname: b\nextends: a.yaml\n',
    'x.yaml': 'stockade: 1\nname: x\nextends: y\n',
    'y.yaml': 'stockade: 1\nname: y\nextends: ./z.yaml\n',
    'z.yaml': '# z closes the loop\nstockade: 1\nname: z\nextends: x\n',
  });
  const f = (name: string) => join(dir, name);
  t.strictSame(failure(f('self.yaml')), [`${f('self.yaml')}:3:10: extends cycle: ${f('self.yaml')} → ${f('self.yaml')}`], 'length 1');
  t.strictSame(failure(f('a.yaml')), [`${f('b.yaml')}:4:10: extends cycle: ${f('a.yaml')} → ${f('b.yaml')} → ${f('a.yaml')}`], 'length 2');
  t.strictSame(
    failure(f('x.yaml')),
    [`${f('z.yaml')}:4:10: extends cycle: ${f('x.yaml')} → ${f('y.yaml')} → ${f('z.yaml')} → ${f('x.yaml')}`],
    'length 3',
  );
});

t.test('a chain longer than 16 policies is refused', async (t) => {
  const entries: Record<string, string> = {};
  for (let i = 0; i < 17; i++) entries[`p${i}.yaml`] = `stockade: 1\nname: p${i}\nextends: p${i + 1}\n`;
  entries['p17.yaml'] = 'stockade: 1\nname: p17\n';
  const dir = files(entries);
  t.strictSame(failure(join(dir, 'p0.yaml')), [`${join(dir, 'p15.yaml')}:3:10: extends chain longer than 16 policies`]);
});

t.test('errors in a base are reported at the base file\'s positions', async (t) => {
  const dir = files({
    'base.yaml': 'stockade: 1\nname: base\n\nusers:\n  group: Builders\n',
    'broken.yaml': 'stockade: 1\nname: broken\ndevices: [zero\n',
    'child.yaml': 'stockade: 1\nname: child\nextends: base\nhostname: ok\n',
    'child2.yaml': 'stockade: 1\nname: child2\nextends: broken\n',
  });
  t.strictSame(failure(join(dir, 'child.yaml')), [
    `${join(dir, 'base.yaml')}:5:10: users.group: must be an account name (lower case letters, digits, '_' and '-'), got "Builders"`,
  ]);
  t.strictSame(failure(join(dir, 'child2.yaml')), [
    `${join(dir, 'broken.yaml')}:4:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]`,
  ]);
});

t.test('origins: locate() points at the file and line that set a value', async (t) => {
  const dir = files({
    'base.yaml': BASE,
    'child.yaml': 'stockade: 1\nname: child\nextends: base\n\nhostname: builder\nusers:\n  passwd: { gecos: Builder }\n',
  });
  const child = loadPolicy(join(dir, 'child.yaml'));
  t.strictSame(child.locate('/hostname'), { file: join(dir, 'child.yaml'), line: 5, col: 11 });
  t.strictSame(child.locate('/hostname', true), { file: join(dir, 'child.yaml'), line: 5, col: 1 }, 'at the key');
  t.strictSame(child.locate('/users/passwd/gecos'), { file: join(dir, 'child.yaml'), line: 7, col: 20 });
  t.strictSame(child.locate('/users/passwd/name'), { file: join(dir, 'base.yaml'), line: 6, col: 19 });
  t.strictSame(child.locate('/users/group'), { file: join(dir, 'base.yaml'), line: 4, col: 10 });
  t.strictSame(child.locate('/environment/set/PATH'), { file: join(dir, 'base.yaml'), line: 9, col: 16 });
  // A pointer with no value of its own falls back to its nearest parent.
  t.strictSame(child.locate('/users/range/first'), child.locate('/users'));
  const base = loadPolicy(join(dir, 'base.yaml'));
  t.strictSame(base.locate('/hostname'), { file: join(dir, 'base.yaml'), line: 11, col: 11 });
});

t.test('seccomp.profile is read relative to the file that set it', async (t) => {
  const profile = (errno: number) => JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: errno, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] });
  const dir = files({
    'bases/base.yaml': 'stockade: 1\nname: base\nseccomp:\n  profile: profiles/build.json\n',
    'bases/profiles/build.json': profile(38),
    'bases/broken.yaml': 'stockade: 1\nname: broken\nseccomp:\n  profile: profiles/none.json\n',
    'sub/child.yaml': 'stockade: 1\nname: child\nextends: ../bases/base.yaml\nseccomp: { deny: [ptrace] }\n',
    'sub/own.yaml': 'stockade: 1\nname: own\nextends: ../bases/base.yaml\nseccomp: { profile: mine.json }\n',
    'sub/mine.json': profile(1),
    'sub/fails.yaml': 'stockade: 1\nname: fails\nextends: ../bases/broken.yaml\n',
  });
  const child = loadPolicy(join(dir, 'sub/child.yaml'));
  t.equal(child.seccompProfile?.path, join(dir, 'bases/profiles/build.json'), "inherited: relative to the base's directory");
  const plan = planFromFile(join(dir, 'sub/child.yaml'));
  t.strictSame(plan.seccomp?.defaultAction, { kind: 'errno', errno: 38, name: 'ENOSYS' });
  t.strictSame(plan.seccomp?.profile, { path: join(dir, 'bases/profiles/build.json'), defaultFrom: 'profile', architecturesFrom: 'profile' });
  t.strictSame(plan.seccomp?.rules.map((r) => [r.syscall, r.action.kind, r.fromProfile ?? false]), [['read', 'allow', true], ['ptrace', 'errno', false]]);
  const own = loadPolicy(join(dir, 'sub/own.yaml'));
  t.equal(own.seccompProfile?.path, join(dir, 'sub/mine.json'), "set in the child: relative to the child's directory");
  t.strictSame(planFromFile(join(dir, 'sub/own.yaml')).seccomp?.defaultAction, { kind: 'errno', errno: 1, name: 'EPERM' });
  t.strictSame(failure(join(dir, 'sub/fails.yaml')), [
    `${join(dir, 'bases/broken.yaml')}:4:12: seccomp.profile: cannot read ${join(dir, 'bases/profiles/none.json')}: no such file`,
  ], 'a missing profile is reported where it is named, in the base');
});
