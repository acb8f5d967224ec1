// seccomp.profile in the Plan: the profile is the base, the policy's settings are added and win
// only where stricter. Debian's containers default profile (golang-github-containers-common,
// installed by .ci/run) and small profiles of our own.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planFromFile, plan } from '../../src/plan/index.js';
import { loadPolicy } from '../../src/policy/load.js';
import type { Plan, SeccompRule } from '../../src/plan/types.js';
import { renderPlan } from '../../src/cli/explain.js';

const DEBIAN_PROFILE = '/usr/share/containers/seccomp.json';
const root = mkdtempSync(join(tmpdir(), 'stockade-seccomp-profile-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** Plans a policy whose seccomp section is `seccomp` (YAML lines), next to `profile` written as p.json. */
function planWith(seccomp: string, profile?: unknown, extra = ''): Plan {
  const dir = mkdtempSync(join(root, `${count++}-`));
  if (profile !== undefined) writeFileSync(join(dir, 'p.json'), JSON.stringify(profile));
  writeFileSync(join(dir, 'policy.yaml'), `stockade: 1\nname: t\n${extra}seccomp:\n${seccomp}`);
  return planFromFile(join(dir, 'policy.yaml'));
}

const rulesFor = (p: Plan, syscall: string): SeccompRule[] => p.seccomp!.rules.filter((r) => r.syscall === syscall);
const EPERM = { kind: 'errno', errno: 1, name: 'EPERM' };
const ENOSYS = { kind: 'errno', errno: 38, name: 'ENOSYS' };

t.test("Debian's default profile plans as it says", async (t) => {
  if (!existsSync(DEBIAN_PROFILE)) {
    t.plan(0, `${DEBIAN_PROFILE} missing: apt-get install golang-github-containers-common`);
    return;
  }
  const p = planWith(`  profile: ${DEBIAN_PROFILE}\n`);
  const s = p.seccomp!;
  t.strictSame(s.defaultAction, ENOSYS, 'an allowlist: what it does not list gets ENOSYS');
  t.strictSame(s.architectures, ['x86_64', 'x86', 'x32'], "the archMap's native entry and its sub-architectures");
  t.strictSame(s.profile, { path: DEBIAN_PROFILE, defaultFrom: 'profile', architecturesFrom: 'profile' });
  t.ok(s.rules.every((r) => r.fromProfile === true), 'every rule is the profile\'s');
  t.strictSame(rulesFor(p, 'read').map((r) => r.action), [{ kind: 'allow' }]);
  t.strictSame(rulesFor(p, 'kexec_load').map((r) => r.action), [EPERM], 'listed as ERRNO 1');
  t.strictSame(rulesFor(p, 'add_key'), [], 'not listed: left to the default');
  // No capabilities in the bounding set: the cap-gated syscalls get the excludes entry (EPERM).
  for (const name of ['bpf', 'chroot', 'perf_event_open', 'init_module', 'open_by_handle_at']) {
    t.strictSame(rulesFor(p, name).map((r) => r.action), [EPERM], `${name} refused without its capability`);
  }
  t.equal(rulesFor(p, 'personality').length, 5, 'personality allowed for five exact personas');
  // The profile allows setns with everything else, and refuses it without CAP_SYS_ADMIN.
  t.strictSame(rulesFor(p, 'setns').map((r) => r.action), [EPERM], 'setns: allowed and refused outright, refused (libseccomp would keep the first)');

  const admin = planWith(`  profile: ${DEBIAN_PROFILE}\n`, undefined, 'capabilities: { bounding: [CAP_SYS_ADMIN, CAP_SYS_CHROOT] }\n');
  t.strictSame(rulesFor(admin, 'bpf').map((r) => r.action), [{ kind: 'allow' }], "the Plan's kept CAP_SYS_ADMIN allows bpf");
  t.strictSame(rulesFor(admin, 'chroot').map((r) => r.action), [{ kind: 'allow' }], 'CAP_SYS_CHROOT allows chroot');
  t.strictSame(rulesFor(admin, 'init_module').map((r) => r.action), [EPERM], 'CAP_SYS_MODULE not kept');
});

t.test("the policy's deny list refuses what the profile allows", async (t) => {
  if (!existsSync(DEBIAN_PROFILE)) {
    t.plan(0, `${DEBIAN_PROFILE} missing`);
    return;
  }
  const p = planWith(`  profile: ${DEBIAN_PROFILE}\n  architectures: [native, x86, x32]\n  errno: EACCES\n  deny: [unshare, keyctl, bpf, io_uring_setup]\n`);
  const EACCES = { kind: 'errno', errno: 13, name: 'EACCES' };
  for (const name of ['unshare', 'keyctl']) {
    t.strictSame(rulesFor(p, name), [{ syscall: name, action: EACCES, args: [], optional: false }], `${name}: the profile's allow gives way to the policy's refusal`);
  }
  t.strictSame(rulesFor(p, 'bpf'), [{ syscall: 'bpf', action: EACCES, args: [], optional: false }], 'both refuse bpf outright: the policy\'s errno');
  t.strictSame(rulesFor(p, 'io_uring_setup').map((r) => r.action), [EACCES], 'not in the profile: added');
  t.strictSame(p.seccomp!.defaultAction, ENOSYS);
  t.strictSame(p.seccomp!.profile?.architecturesFrom, 'policy');
  t.equal(p.seccomp!.rules.filter((r) => !r.fromProfile).length, 4, 'four rules of the policy\'s own');
  const text = renderPlan(p);
  t.match(text, `  based on the profile ${DEBIAN_PROFILE}: ${p.seccomp!.rules.length - 4} of its rules, 4 of the policy's own; default from the profile, architectures from the policy\n`, 'explain names the profile');
  t.match(text, /\n  errno EACCES: unshare keyctl bpf io_uring_setup\n/, "explain: the policy's own rules");
  t.match(text, /\n  errno EPERM \(profile\): [^\n]*\bchroot\?/, "explain: the profile's, marked");
});

t.test('default and architectures: the stricter default, the policy\'s ABIs', async (t) => {
  const allowlist = { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'], syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] };
  const denylist = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_ERRNO' }] };

  const weaker = planWith('  profile: p.json\n  default: allow\n', allowlist).seccomp!;
  t.strictSame(weaker.defaultAction, ENOSYS, 'default: allow does not open an allowlist');
  t.equal(weaker.profile?.defaultFrom, 'profile');
  t.strictSame(weaker.architectures, ['x86_64', 'x86'], "no architectures in the policy: the profile's");

  const kill = planWith('  profile: p.json\n  default: kill_process\n  architectures: [native]\n', allowlist).seccomp!;
  t.strictSame(kill.defaultAction, { kind: 'kill_process' }, 'a stricter default wins');
  t.equal(kill.profile?.defaultFrom, 'policy');
  t.strictSame(kill.architectures, ['x86_64'], "the policy's architectures");

  const tie = planWith('  profile: p.json\n  default: errno\n  errno: EPERM\n', allowlist).seccomp!;
  t.strictSame(tie.defaultAction, ENOSYS, "two refusing defaults of the same kind: the profile's errno stays");

  const closed = planWith('  profile: p.json\n  default: errno\n', denylist).seccomp!;
  t.strictSame(closed.defaultAction, EPERM, 'default: errno makes a denylist profile an allowlist');
  t.strictSame(closed.architectures, ['x86_64'], 'a profile without architectures: native only');
});

t.test('refusals under conditions combine where one filter can say it', async (t) => {
  const profile = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: ['chmod'], action: 'SCMP_ACT_ALLOW' },
      { names: ['clone'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0x10000000, valueTwo: 0x10000000, op: 'SCMP_CMP_MASKED_EQ' }] },
      { names: ['kexec_load'], action: 'SCMP_ACT_KILL_PROCESS' },
      { names: ['ioctl'], action: 'SCMP_ACT_ERRNO' },
    ],
  };
  const setuid = { index: 1, op: 'masked_eq', mask: 0o4000, value: 0o4000 };
  const p = planWith(
    '  profile: p.json\n  deny: [kexec_load]\n  rules:\n' +
      '    - { syscall: chmod, action: errno, args: [{ index: 1, op: masked_eq, mask: 0o4000, value: 0o4000 }] }\n' +
      '    - { syscall: clone, action: errno, args: [{ index: 0, op: masked_eq, mask: 0x20000000, value: 0x20000000 }] }\n' +
      '    - { syscall: ioctl, action: kill_process, args: [{ index: 1, op: masked_eq, mask: 0xffffffff, value: 0x5412 }] }\n',
    profile,
  );
  t.strictSame(rulesFor(p, 'chmod'), [{ syscall: 'chmod', action: EPERM, args: [setuid], optional: false }], "an allowing default: the profile's allow of chmod is dropped, the refusal added");
  t.strictSame(rulesFor(p, 'clone').map((r) => [r.args[0]!.mask, r.fromProfile ?? false]), [[0x10000000, true], [0x20000000, false]], 'refusals under conditions from both sides');
  t.strictSame(rulesFor(p, 'kexec_load').map((r) => [r.action.kind, r.fromProfile ?? false]), [['kill_process', true]], 'the profile refuses kexec_load outright with a stricter action: it stays');
  t.strictSame(rulesFor(p, 'ioctl').map((r) => [r.action.kind, r.args.length, r.fromProfile ?? false]), [['errno', 0, true]], 'the profile refuses ioctl outright: the conditional rule would change nothing');

  const allowlist = planWith(
    '  profile: p.json\n  rules:\n    - { syscall: fchmodat, action: errno, args: [{ index: 2, op: masked_eq, mask: 0o4000, value: 0o4000 }] }\n',
    { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] },
  );
  t.strictSame(rulesFor(allowlist, 'fchmodat').map((r) => r.args[0]!.index), [2], 'a syscall the allowlist leaves to its default: the refusal is kept (it only changes the errno)');
});

t.test('a syscall allowed and refused outright by the policy itself is refused', async (t) => {
  const p = planWith('  default: errno\n  deny: [ptrace]\n  rules:\n    - { syscall: ptrace, action: allow }\n    - { syscall: ptrace, action: kill_process }\n');
  t.strictSame(rulesFor(p, 'ptrace').map((r) => r.action.kind), ['kill_process'], 'the strictest outright rule, whatever the order');
});

t.test('the planner reads no files: a policy naming a profile is planned from its loaded import', async (t) => {
  const dir = mkdtempSync(join(root, 'pure-'));
  writeFileSync(join(dir, 'p.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] }));
  writeFileSync(join(dir, 'policy.yaml'), 'stockade: 1\nname: t\nseccomp: { profile: p.json }\n');
  const loaded = loadPolicy(join(dir, 'policy.yaml'));
  const spec = { name: 'x', builder: '/bin/sh' };
  t.throws(() => plan({ ...loaded, seccomp: null }, spec), { message: /seccomp section but no planned filter/ });
  rmSync(join(dir, 'p.json'));
  t.strictSame(plan(loaded, spec).seccomp?.defaultAction, { kind: 'allow' }, 'planned from the import after the file is gone');
});

t.test('seccomp is planned once, by the loader; the planner resolves native only for the host it is told of', async (t) => {
  const dir = mkdtempSync(join(root, 'native-'));
  writeFileSync(join(dir, 'policy.yaml'), 'stockade: 1\nname: t\nseccomp: { architectures: [native, x86_64, x32], deny: [ptrace] }\n');
  const loaded = loadPolicy(join(dir, 'policy.yaml'));
  t.strictSame(loaded.seccomp?.architectures, ['native', 'x86_64', 'x32'], 'the loader keeps native as written');
  const spec = { name: 'x', builder: '/bin/sh' };
  t.strictSame(plan(loaded, spec, { nativeArch: 'x86_64' }).seccomp?.architectures, ['x86_64', 'x32'], 'native resolved, duplicates dropped');
  t.strictSame(plan(loaded, spec).seccomp?.architectures, ['native', 'x86_64', 'x32'], 'without a host, libseccomp resolves native');
  const replaced = { ...loaded, seccomp: { ...loaded.seccomp!, rules: [] } };
  t.strictSame(plan(replaced, spec).seccomp?.rules, [], "the plan carries the loader's filter, not one planned again");
});
