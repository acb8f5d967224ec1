// The daemon-wide guix-daemon options applied to a Plan: they tighten, never loosen.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { applyDefaults, boundSpec, checkChrootDirectories, DefaultsRefused, NO_DEFAULTS, type DaemonDefaults } from '../../src/daemon/defaults.js';
import { planFromFile } from '../../src/plan/index.js';
import type { BuildSpec } from '../../src/policy/types.js';

process.chdir(fileURLToPath(new URL('../..', import.meta.url)));

const SPEC: BuildSpec = { name: 'hello', builder: '/gnu/store/x-bash/bin/sh', args: [], env: {}, inputs: ['/gnu/store/x-bash'], outputs: ['/gnu/store/y-hello'] };
const planOf = (spec: BuildSpec = SPEC) => planFromFile('policies/guix-default.yaml', { spec });
const withDefaults = (d: Partial<DaemonDefaults>): DaemonDefaults => ({ ...NO_DEFAULTS, ...d });

t.test('no options: the plan is unchanged', async (t) => {
  const plan = planOf();
  t.strictSame(applyDefaults(plan, NO_DEFAULTS), plan);
  t.strictSame(boundSpec(SPEC, NO_DEFAULTS), SPEC);
});

t.test('timeouts: the smaller non-zero one wins, from either side', async (t) => {
  const plan = planOf(); // policy: total 86400, max_silent 3600
  t.strictSame(applyDefaults(plan, withDefaults({ timeoutSeconds: 600, maxSilentSeconds: 7200 })).timeouts, { totalSeconds: 600, maxSilentSeconds: 3600 });
  const unbounded = { ...plan, timeouts: { totalSeconds: 0, maxSilentSeconds: 0 } };
  t.strictSame(applyDefaults(unbounded, withDefaults({ timeoutSeconds: 600, maxSilentSeconds: 60 })).timeouts, { totalSeconds: 600, maxSilentSeconds: 60 }, 'a policy without timeouts gets the daemon\'s');
  t.strictSame(applyDefaults(plan, withDefaults({ timeoutSeconds: 0 })).timeouts, plan.timeouts, '0 is no bound, not a zero-second timeout');
});

t.test('--cores bounds the spec; 0 (all) gets the bound', async (t) => {
  const d = withDefaults({ cores: 2 });
  t.equal(boundSpec({ ...SPEC, cores: 0 }, d).cores, 2);
  t.equal(boundSpec({ ...SPEC }, d).cores, 2, 'unset means all');
  t.equal(boundSpec({ ...SPEC, cores: 8 }, d).cores, 2);
  t.equal(boundSpec({ ...SPEC, cores: 1 }, d).cores, 1, 'a smaller request stays');
  const plan = planOf(boundSpec({ ...SPEC, cores: 8 }, d));
  t.equal(plan.build.cores, 2, 'the bounded spec is what the plan is made from');
});

t.test('--build-users-group: the default pool moves to it; another group or a range is refused', async (t) => {
  const plan = planOf();
  t.strictSame(applyDefaults(plan, withDefaults({ buildUsersGroup: 'builders' })).identity.pool, { kind: 'group', group: 'builders' });
  const named = { ...plan, identity: { ...plan.identity, pool: { kind: 'group' as const, group: 'builders' } } };
  t.strictSame(applyDefaults(named, withDefaults({ buildUsersGroup: 'builders' })).identity.pool, { kind: 'group', group: 'builders' });
  const other = { ...plan, identity: { ...plan.identity, pool: { kind: 'group' as const, group: 'kvm-builders' } } };
  t.throws(() => applyDefaults(other, withDefaults({ buildUsersGroup: 'builders' })), new DefaultsRefused("policy 'guix-default' takes build users from group 'kvm-builders'; this daemon builds only as members of 'builders' (--build-users-group)"));
  const range = { ...plan, identity: { ...plan.identity, pool: { kind: 'range' as const, first: 30000, count: 4, gid: 30000 } } };
  t.throws(() => applyDefaults(range, withDefaults({ buildUsersGroup: 'builders' })), { message: /takes build users from uids 30000-30003; this daemon builds only as members of 'builders'/ });
  t.strictSame(applyDefaults(range, NO_DEFAULTS).identity, range.identity, 'without the option a range pool is kept');
});

t.test('--chroot-directory: a read-only bind at the same path, in mount order', async (t) => {
  const plan = planOf();
  const out = applyDefaults(plan, withDefaults({ chrootDirectories: [{ path: '/opt/tools/', kind: 'dir' }, { path: '/etc/ssl/certs', kind: 'dir' }] }));
  const added = out.mounts.filter((m) => m.role === 'chroot-directory');
  t.strictSame(added.map((m) => [m.type === 'bind' && m.source.kind === 'host' ? m.source.path : m.type, m.target, m.readonly, m.nosuid, m.nodev]), [['/opt/tools', '/opt/tools', true, true, true], ['/etc/ssl/certs', '/etc/ssl/certs', true, true, true]]);
  const depths = out.mounts.map((m) => m.target.split('/').filter(Boolean).length);
  t.strictSame(depths, [...depths].sort((a, b) => a - b), 'parents before children');
  t.equal(out.mounts.length, plan.mounts.length + 2);
  t.strictSame(plan.mounts.filter((m) => m.role === 'chroot-directory'), [], 'the input plan is not modified');
  const again = applyDefaults(plan, withDefaults({ chrootDirectories: [{ path: '/gnu/store/x-bash', kind: 'dir' }] }));
  t.equal(again.mounts.length, plan.mounts.length, 'a path the plan already binds read-only is not bound twice');
});

t.test('--chroot-directory never hides what the plan sets up', async (t) => {
  const plan = planOf();
  const refuse = (path: string, what: RegExp) => t.throws(() => applyDefaults(plan, withDefaults({ chrootDirectories: [{ path, kind: 'dir' }] })), what, path);
  refuse('/', /would hide \/ \(set up by Stockade itself\)/);
  refuse('/tmp', /would hide \/tmp/);
  refuse('/dev/null', /would hide \/dev\/null \(the plan's device mount\)/);
  refuse('/etc/passwd', /would hide \/etc\/passwd \(a file Stockade writes\)/);
  refuse('/gnu/store', /would hide \/gnu\/store \(the plan's outputs-dir mount\)/);
  refuse('/gnu/store/y-hello', /would hide \/gnu\/store\/y-hello \(an output of the build\)/);
  t.throws(() => checkChrootDirectories(['/proc']), /--chroot-directory=\/proc would hide \/proc/);
  t.throws(() => checkChrootDirectories(['/']), /would hide \//);
  t.doesNotThrow(() => checkChrootDirectories(['/opt', '/dev/kvm', '/etc/ssl']));
});
