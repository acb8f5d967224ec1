// Loaded filters, observed from a throwaway child process: what a build would see.
import t from 'tap';
import type { SeccompPlan, SeccompRule } from '../../src/plan/types.js';
import { S_ISGID, S_ISUID } from '../../src/ffi/arch.js';
import { X86_64_SYSCALLS } from '../../src/linux/syscalls.js';
import { distUrl, ensureBuilt, runChild, runChildJson } from '../helpers/child.js';

t.before(ensureBuilt);

const EPERM = { kind: 'errno', errno: 1, name: 'EPERM' } as const;

/** Nix's filter: no setuid/setgid bits through any chmod call, on x86_64, x86 and x32. */
function nixLikePlan(): SeccompPlan {
  const modeArg: Record<string, number> = { chmod: 1, fchmod: 1, fchmodat: 2, fchmodat2: 2 };
  const rules: SeccompRule[] = [];
  for (const [syscall, index] of Object.entries(modeArg)) {
    for (const bit of [S_ISUID, S_ISGID]) {
      rules.push({ syscall, action: EPERM, optional: false, args: [{ index, op: 'masked_eq', mask: bit, value: bit }] });
    }
  }
  rules.push({ syscall: 'unshare', action: EPERM, optional: false, args: [] });
  rules.push({ syscall: 'setxattr', action: { kind: 'errno', errno: 95, name: 'ENOTSUP' }, optional: false, args: [] });
  return { defaultAction: { kind: 'allow' }, architectures: ['x86_64', 'x86', 'x32'], rules };
}

/** A child that loads `plan`, runs the probes and prints what each returned. */
function probeScript(plan: SeccompPlan): string {
  return `
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileSeccomp, loadSeccomp } from '${distUrl('seccomp/compile.js')}';
import { readFileSync } from 'node:fs';
import { chmod } from '${distUrl('ffi/libc.js')}';
import { rawSyscall } from '${distUrl('conformance/calls.js')}';
import { SYS, X32_SYSCALL_BIT, AT_FDCWD } from '${distUrl('ffi/arch.js')}';
const file = join(process.env.STOCKADE_TEST_DIR, 'f');
writeFileSync(file, '');
loadSeccomp(compileSeccomp(${JSON.stringify(plan)}));
const out = {
  nnp: /^NoNewPrivs:\\s+1$/m.test(readFileSync('/proc/self/status', 'utf8')),
  chmodSetuid: rawSyscall(SYS.chmod, file, 0o4755),
  chmodSetgid: rawSyscall(SYS.chmod, file, 0o2755),
  chmodPlain: rawSyscall(SYS.chmod, file, 0o755),
  fchmodatSetuid: rawSyscall(SYS.fchmodat, AT_FDCWD, file, 0o4755),
  fchmodat2Setuid: rawSyscall(SYS.fchmodat2, AT_FDCWD, file, 0o4755, 0),
  fchmodat2Setgid: rawSyscall(SYS.fchmodat2, AT_FDCWD, file, 0o2755, 0),
  fchmodat2Plain: rawSyscall(SYS.fchmodat2, AT_FDCWD, file, 0o700, 0),
  fchmodBadFd: rawSyscall(SYS.fchmod, -1, 0o755),
  unshare: rawSyscall(SYS.unshare, 0),
  unshareX32: rawSyscall(SYS.unshare | X32_SYSCALL_BIT, 0),
  setxattr: rawSyscall(SYS.setxattr, file, 'user.x', null, 0, 0),
  readBadFd: rawSyscall(0 /* read */, -1, null, 0),
  status: (await import('node:fs')).readFileSync('/proc/self/status', 'utf8').match(/^Seccomp:\\s+(\\d)/m)[1],
};
let message = '';
try { chmod(file, 0o4755); } catch (e) { message = e.message; }
out.chmodMessage = message;
process.stdout.write(JSON.stringify(out));
`;
}

t.test('a Nix-like filter denies setuid/setgid chmods and lets the rest reach the kernel', async (t) => {
  const r = runChildJson<Record<string, any>>(probeScript(nixLikePlan()));
  const eperm = { result: -1, errno: 1 };
  t.equal(r.status, '2', 'seccomp filter mode');
  t.equal(r.nnp, true, 'NO_NEW_PRIVS set before loading');
  t.same(r.chmodSetuid, eperm, 'chmod 4755 -> EPERM');
  t.same(r.chmodSetgid, eperm, 'chmod 2755 -> EPERM');
  t.same(r.chmodPlain, { result: 0, errno: 0 }, 'chmod 0755 works');
  t.same(r.fchmodatSetuid, eperm, 'fchmodat 4755 -> EPERM');
  t.same(r.fchmodat2Setuid, eperm, 'fchmodat2 (452) 4755 -> EPERM');
  t.same(r.fchmodat2Setgid, eperm, 'fchmodat2 (452) 2755 -> EPERM');
  t.same(r.fchmodat2Plain, { result: 0, errno: 0 }, 'fchmodat2 0700 works');
  t.same(r.fchmodBadFd, { result: -1, errno: 9 }, 'fchmod(-1) reached the kernel: EBADF');
  t.same(r.readBadFd, { result: -1, errno: 9 }, 'read(-1) reached the kernel: EBADF');
  t.same(r.unshare, eperm, 'unshare -> EPERM');
  t.same(r.unshareX32, eperm, 'x32 unshare (272 | 0x40000000) -> EPERM, not ENOSYS');
  t.same(r.setxattr, { result: -1, errno: 95 }, 'setxattr -> the rule\'s own errno (ENOTSUP)');
  t.match(r.chmodMessage, /^chmod\(".*\/f", 04755\): EPERM \(Operation not permitted\)$/);
});

t.test('without the x32 architecture the x32 number kills the process', async (t) => {
  const plan: SeccompPlan = { defaultAction: { kind: 'allow' }, architectures: ['x86_64'], rules: [{ syscall: 'unshare', action: EPERM, optional: false, args: [] }] };
  const result = runChild(`
import { compileSeccomp, loadSeccomp } from '${distUrl('seccomp/compile.js')}';
import { rawSyscall } from '${distUrl('conformance/calls.js')}';
loadSeccomp(compileSeccomp(${JSON.stringify(plan)}));
console.log(JSON.stringify(rawSyscall(272 | 0x40000000, 0)));
`);
  t.equal(result.signal, 'SIGSYS', 'bad-arch action kills the process');
});

t.test('a default errno action and a kill_process rule', async (t) => {
  // Every x86_64 syscall is allowed (optional: those newer than this libseccomp are skipped),
  // except two: node keeps working, and getuid shows the default action, getppid the kill rule.
  const names = Object.keys(X86_64_SYSCALLS).filter((name) => name !== 'getuid' && name !== 'getppid');
  t.ok(names.length > 300, `${names.length} x86_64 syscalls allowed`);
  const plan: SeccompPlan = {
    defaultAction: { kind: 'errno', errno: 38, name: 'ENOSYS' },
    architectures: ['x86_64'],
    rules: [
      ...names.map((syscall) => ({ syscall, action: { kind: 'allow' } as const, optional: true, args: [] })),
      { syscall: 'getppid', action: { kind: 'kill_process' }, optional: false, args: [] },
    ],
  };
  const result = runChild(`
import { readFileSync } from 'node:fs';
import { compileSeccomp, loadSeccomp } from '${distUrl('seccomp/compile.js')}';
import { rawSyscall } from '${distUrl('conformance/calls.js')}';
loadSeccomp(compileSeccomp(JSON.parse(readFileSync(process.env.PLAN_FILE, 'utf8'))));
const r = { getuid: rawSyscall(102), getpid: rawSyscall(39).result === process.pid };
process.stdout.write(JSON.stringify(r) + '\\n');
rawSyscall(110);
`, { files: { 'plan.json': JSON.stringify(plan) }, env: { PLAN_FILE: 'plan.json' } });
  t.equal(result.signal, 'SIGSYS', 'getppid killed the process');
  t.same(JSON.parse(result.stdout), { getuid: { result: -1, errno: 38 }, getpid: true }, 'unlisted syscall -> default ENOSYS, listed one allowed');
});
