// A policy built on Debian's containers default profile, planned, compiled and loaded in a
// throwaway child: what a build would see. Root, so that what the filter refuses is not refused
// anyway for want of a capability.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planFromFile } from '../../src/plan/index.js';
import { distUrl, ensureBuilt, isRoot, NOT_ROOT_REASON, runChildJson } from '../helpers/child.js';

const DEBIAN_PROFILE = '/usr/share/containers/seccomp.json';

t.test('a profile-based filter refuses what the profile and the policy refuse, and nothing else', async (t) => {
  if (!isRoot) { t.plan(0, NOT_ROOT_REASON); return; }
  if (!existsSync(DEBIAN_PROFILE)) { t.plan(0, `${DEBIAN_PROFILE} missing: apt-get install golang-github-containers-common`); return; }
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'stockade-profile-load-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `stockade: 1\nname: t\nseccomp:\n  profile: ${DEBIAN_PROFILE}\n  errno: EACCES\n  deny: [unshare]\n`);
  const plan = planFromFile(policy);

  const r = runChildJson<Record<string, { result: number; errno: number } | boolean>>(`
import { readFileSync } from 'node:fs';
import { compileSeccomp, loadSeccomp } from '${distUrl('seccomp/compile.js')}';
import { rawSyscall } from '${distUrl('conformance/calls.js')}';
import { X32_SYSCALL_BIT } from '${distUrl('ffi/arch.js')}';
// Before the filter: root may chroot.
const chrootBefore = rawSyscall(161, '/');
loadSeccomp(compileSeccomp(JSON.parse(readFileSync('plan.json', 'utf8')).seccomp));
process.stdout.write(JSON.stringify({
  chrootBefore,
  chroot: rawSyscall(161, '/'),
  bpf: rawSyscall(321, -1, null, 0),
  addKey: rawSyscall(248, null, null, null, 0, 0),
  setns: rawSyscall(308, -1, 0),
  unshare: rawSyscall(272, 0),
  unshareX32: rawSyscall(272 | X32_SYSCALL_BIT, 0),
  getpid: rawSyscall(39).result === process.pid,
}));
`, { files: { 'plan.json': JSON.stringify(plan) } });
  t.same(r.chrootBefore, { result: 0, errno: 0 }, 'without the filter, root may chroot');
  t.same(r.chroot, { result: -1, errno: 1 }, 'chroot without CAP_SYS_CHROOT in the Plan: the profile\'s EPERM');
  t.same(r.bpf, { result: -1, errno: 1 }, 'bpf without CAP_SYS_ADMIN: EPERM');
  t.same(r.addKey, { result: -1, errno: 38 }, 'add_key, not in the profile: its default ENOSYS');
  t.same(r.setns, { result: -1, errno: 1 }, 'setns, allowed and refused outright by the profile: refused (EPERM, not the EBADF of a call that ran)');
  t.same(r.unshare, { result: -1, errno: 13 }, 'unshare, allowed by the profile, refused by the policy with its errno EACCES');
  t.same(r.unshareX32, { result: -1, errno: 13 }, 'also through the x32 ABI');
  t.equal(r.getpid, true, 'getpid works');
});
