// Import of OCI / Docker seccomp profiles: small fixtures of our own, and the real default
// profile Debian ships in golang-github-containers-common (/usr/share/containers/seccomp.json).
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { importOciProfile, kernelAtLeast } from '../../src/seccomp/oci.js';
import { jsonErrorAt } from '../../src/seccomp/profile-file.js';
import { compileSeccomp, exportSeccomp } from '../../src/seccomp/compile.js';
import { distUrl, ensureBuilt, runChildJson } from '../helpers/child.js';

const DEBIAN_PROFILE = '/usr/share/containers/seccomp.json';

const fixture = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 38,
  archMap: [
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
  ],
  syscalls: [
    { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
    { names: ['kexec_load'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
    { names: ['reboot'], action: 'SCMP_ACT_ERRNO' },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }] },
    { names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['bpf'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
    { names: ['breakpoint'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm'] } },
    { names: ['modify_ldt'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['amd64'] } },
    { names: ['futex_waitv'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.16' } },
    { names: ['future_call'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '99.0' } },
    { names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 1, value: 2048, valueTwo: 2048, op: 'SCMP_CMP_MASKED_EQ' }] },
    {
      names: ['socket'],
      action: 'SCMP_ACT_ALLOW',
      args: [
        { index: 0, value: 16, op: 'SCMP_CMP_NE' },
        { index: 0, value: 17, op: 'SCMP_CMP_NE' },
      ],
    },
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 2, value: 0, op: 'SCMP_CMP_GT' }] },
  ],
};

t.test('a profile becomes a plan for this machine and capability set', async (t) => {
  const plan = importOciProfile(fixture, { caps: [], kernel: '6.1.0-18-amd64' });
  t.same(plan.defaultAction, { kind: 'errno', errno: 38, name: 'ENOSYS' });
  t.same(plan.architectures, ['x86_64', 'x86', 'x32'], 'native entry of archMap with its sub-architectures');
  const names = plan.rules.map((r) => r.syscall);
  t.same(names.filter((n) => n === 'bpf').length, 1, 'one of the two bpf entries applies');
  t.same(plan.rules.find((r) => r.syscall === 'bpf')!.action, { kind: 'errno', errno: 1, name: 'EPERM' }, 'without CAP_SYS_ADMIN: the excludes entry');
  t.ok(names.includes('arch_prctl'), 'includes.arches amd64 applies');
  t.notOk(names.includes('breakpoint'), 'includes.arches arm does not');
  t.notOk(names.includes('modify_ldt'), 'excludes.arches amd64 removes it');
  t.ok(names.includes('futex_waitv'), 'minKernel 5.16 <= 6.1');
  t.notOk(names.includes('future_call'), 'minKernel 99.0 > 6.1');
  t.same(plan.rules.find((r) => r.syscall === 'reboot')!.action, { kind: 'errno', errno: 1, name: 'EPERM' }, 'ERRNO without errnoRet is EPERM');
  t.same(plan.rules.find((r) => r.syscall === 'chmod')!.args, [{ index: 1, op: 'masked_eq', mask: 2048, value: 2048 }], 'masked_eq: value is the mask, valueTwo the datum');
  const socketRules = plan.rules.filter((r) => r.syscall === 'socket');
  t.equal(socketRules.length, 2, 'two conditions on the same argument become two rules, as in runc');
  const clone = plan.rules.filter((r) => r.syscall === 'clone');
  t.equal(clone.length, 1, 'conditions on distinct arguments stay one rule (AND)');
  t.equal(clone[0]!.args.length, 2);
  t.ok(plan.rules.every((r) => r.optional), 'with a denying default, unknown names may be skipped');

  const admin = importOciProfile(fixture, { caps: ['CAP_SYS_ADMIN'], kernel: '6.1' });
  t.same(admin.rules.filter((r) => r.syscall === 'bpf').map((r) => r.action.kind), ['allow'], 'with CAP_SYS_ADMIN: the includes entry');
  t.same(importOciProfile(fixture, { caps: ['sys_admin'], kernel: '6.1' }).rules.filter((r) => r.syscall === 'bpf').map((r) => r.action.kind), ['allow'], 'capability names normalised');
});

t.test('an allow-by-default profile keeps its deny rules mandatory', async (t) => {
  const plan = importOciProfile(
    { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'], syscalls: [{ names: ['kexec_load', 'made_up_call'], action: 'SCMP_ACT_KILL_PROCESS' }] },
    { caps: [] },
  );
  t.same(plan.architectures, ['x86_64', 'x32']);
  t.ok(plan.rules.every((r) => !r.optional), 'skipping a deny rule would open the syscall');
  t.throws(() => compileSeccomp(plan), { message: /unknown to libseccomp .*: made_up_call$/ });
});

t.test('what the importer does not understand is an error', async (t) => {
  const base = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] as unknown[] };
  t.throws(() => importOciProfile({ ...base, listenerPath: '/run/x' }, { caps: [] }), { message: "seccomp profile: top level: unsupported field 'listenerPath'" });
  t.throws(() => importOciProfile({ ...base, syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_TRACE' }] }, { caps: [] }), { message: /syscalls\[0\]\.action: unsupported action "SCMP_ACT_TRACE"/ });
  t.throws(() => importOciProfile({ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_LIKE' }] }] }, { caps: [] }), { message: /args\[0\]: unknown operator "SCMP_CMP_LIKE"/ });
  t.throws(() => importOciProfile({ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, errno: 'EACCES' }] }, { caps: [] }), { message: /disagree/ });
  t.throws(() => importOciProfile({ ...base, flags: ['SECCOMP_FILTER_FLAG_LOG'] }, { caps: [] }), { message: /flags are not supported/ });
  t.throws(() => importOciProfile([], { caps: [] }), { message: /expected an object/ });
});

t.test('JSON errors are located where JSON.parse stops', async (t) => {
  const cases: [string, number, RegExp][] = [
    ['{"a": 1,}', 8, /property name/],
    ['{"a": [1 2]}', 9, /expected ',' or '\]'/],
    ['{"a": tru}', 6, /expected a value, unexpected "t"/],
    ['{"a": "x\ny"}', 8, /control character/],
    ['{"a": 01}', 7, /expected ',' or '}', unexpected "1"/],
    ['{} x', 3, /unexpected "x" after the JSON value/],
    ['\ufeff{}', 0, /unexpected "\ufeff"/],
    ['{"a": ', 6, /unexpected end of file/],
  ];
  for (const [text, offset, message] of cases) {
    t.throws(() => JSON.parse(text), `${JSON.stringify(text)} is invalid`);
    t.match(jsonErrorAt(text), { offset, message }, JSON.stringify(text));
  }
  for (const text of ['{}', '[]', '"x"', '-1.5e+3', '{"a": [true, false, null, "\\u00e9\\n"]}']) t.equal(jsonErrorAt(text), null, `${text} is valid`);
  if (existsSync(DEBIAN_PROFILE)) t.equal(jsonErrorAt(readFileSync(DEBIAN_PROFILE, 'utf8')), null, "Debian's profile is valid");
});

t.test('kernel release comparison', async (t) => {
  t.ok(kernelAtLeast('6.18.44-fc-v782', '5.8'));
  t.ok(kernelAtLeast('5.8.0', '5.8'));
  t.notOk(kernelAtLeast('5.4.0-100-generic', '5.8'));
  t.notOk(kernelAtLeast('4.19', '4.19.1'));
});

t.test("Debian's containers default profile imports, compiles and holds", async (t) => {
  if (!existsSync(DEBIAN_PROFILE)) {
    t.plan(0, `${DEBIAN_PROFILE} missing: apt-get install golang-github-containers-common`);
    return;
  }
  ensureBuilt();
  const profile = JSON.parse(readFileSync(DEBIAN_PROFILE, 'utf8'));
  const plan = importOciProfile(profile, { caps: [] });
  t.same(plan.architectures, ['x86_64', 'x86', 'x32']);
  const compiled = compileSeccomp(plan);
  t.same(compiled.skipped, [], 'libseccomp knows every name the profile uses');
  compiled.release();
  const pfc = exportSeccomp(plan, 'pfc').toString();
  for (const arch of ['x86_64', 'x86', 'x32']) t.match(pfc, `# filter for arch ${arch} (`, `${arch} in the pfc export`);

  const r = runChildJson<Record<string, { result: number; errno: number }>>(`
import { compileSeccomp, loadSeccomp } from '${distUrl('seccomp/compile.js')}';
import { rawSyscall } from '${distUrl('conformance/calls.js')}';
loadSeccomp(compileSeccomp(${JSON.stringify(plan)}));
process.stdout.write(JSON.stringify({
  kexecLoad: rawSyscall(246, 0, 0, 0, 0),
  bpf: rawSyscall(321, -1, null, 0),
  addKey: rawSyscall(248, null, null, null, 0, 0),
  chmodReached: rawSyscall(90, '/nonexistent/stockade', 0o755),
  userfaultfd: rawSyscall(323, 0),
  userfaultfdX32: rawSyscall(323 | 0x40000000, 0),
}));
`);
  t.same(r.kexecLoad, { result: -1, errno: 1 }, 'kexec_load -> EPERM (listed)');
  t.same(r.bpf, { result: -1, errno: 1 }, 'bpf without CAP_SYS_ADMIN -> EPERM');
  t.same(r.addKey, { result: -1, errno: 38 }, 'add_key (not listed) -> the default ENOSYS');
  t.same(r.chmodReached, { result: -1, errno: 2 }, 'chmod reached the kernel: ENOENT');
  t.same(r.userfaultfd, { result: -1, errno: 1 }, 'userfaultfd -> EPERM (listed)');
  t.same(r.userfaultfdX32, { result: -1, errno: 1 }, 'the x32 number (323 | 0x40000000) -> EPERM too');
});
