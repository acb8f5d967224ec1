// The seccomp rules on a filter based on an OCI profile: the escape checks look at what the
// merged filter lets through, and an allowlist profile scores better than a denylist.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditFile } from '../../src/audit/index.js';
import { diffPlans } from '../../src/audit/diff.js';
import { planFromFile } from '../../src/plan/index.js';
import type { AuditReport } from '../../src/audit/types.js';

const DEBIAN_PROFILE = '/usr/share/containers/seccomp.json';
const dir = mkdtempSync(join(tmpdir(), 'stockade-audit-profile-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function audit(name: string, seccomp: string): AuditReport {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `stockade: 1\nname: ${name}\nseccomp:\n${seccomp}`);
  return auditFile(file);
}
const seccompIds = (r: AuditReport) => [...new Set(r.findings.filter((f) => f.concern === 'seccomp').map((f) => f.ruleId))].sort();

t.test("Debian's allowlist profile, alone and with a deny list", async (t) => {
  if (!existsSync(DEBIAN_PROFILE)) { t.plan(0, `${DEBIAN_PROFILE} missing: apt-get install golang-github-containers-common`); return; }
  const profile = audit('profile', `  profile: ${DEBIAN_PROFILE}\n`);
  // It relies on capabilities for these, which a build user lacks but a user namespace gives back.
  t.same(seccompIds(profile), ['STK-SEC-010', 'STK-SEC-011', 'STK-SEC-012', 'STK-SEC-017', 'STK-SEC-020', 'STK-SEC-021']);
  const namespaces = profile.findings.find((f) => f.ruleId === 'STK-SEC-010')!;
  t.match(namespaces, { file: join(dir, 'profile.yaml'), line: 4, col: 12 }, 'points at seccomp.profile');
  t.match(namespaces.message, /lets through unshare, clone3, clone\(CLONE_NEWNS\)/, 'setns, allowed and refused outright by the profile, is refused');

  const denylist = audit('denylist', '  default: allow\n  architectures: [native, x86, x32]\n  deny: [kexec_load, kexec_file_load, init_module, finit_module, delete_module]\n');
  t.ok(profile.score < denylist.score, `the allowlist (${profile.score}) scores better than a short denylist (${denylist.score})`);
  t.ok(seccompIds(denylist).includes('STK-SEC-013') && !seccompIds(profile).includes('STK-SEC-013'), 'bpf: open in the denylist, refused by the profile without CAP_SYS_ADMIN');

  const hardened = audit('hardened', `  profile: ${DEBIAN_PROFILE}\n  deny: [unshare, setns, clone3, mount, umount2, pivot_root, move_mount, open_tree, fsopen, fsconfig, fsmount, fspick, mount_setattr, keyctl, ptrace, process_vm_readv, process_vm_writev]\n`);
  t.same(seccompIds(hardened), ['STK-SEC-010', 'STK-SEC-020', 'STK-SEC-021'], 'the deny list closes what it names');
  t.ok(hardened.score < profile.score, `hardened ${hardened.score} < profile ${profile.score}`);
  t.match(hardened.findings.find((f) => f.ruleId === 'STK-SEC-010')!.message, /lets through clone\(CLONE_NEWNS\)/, 'clone stays open: the profile allows it outright');
  t.notMatch(hardened.findings.find((f) => f.ruleId === 'STK-SEC-010')!.message, /unshare/);
});

t.test('diff: a denylist replaced by an allowlist profile strengthens; its allow rules open nothing', async (t) => {
  if (!existsSync(DEBIAN_PROFILE)) { t.plan(0, `${DEBIAN_PROFILE} missing`); return; }
  const write = (name: string, seccomp: string) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, `stockade: 1\nname: ${name}\nseccomp:\n${seccomp}`);
    return planFromFile(file);
  };
  const before = write('deny-only', '  default: allow\n  architectures: [native, x86, x32]\n  deny: [ptrace, unshare]\n');
  const after = write('on-profile', `  profile: ${DEBIAN_PROFILE}\n  deny: [ptrace, unshare]\n`);
  const changes = diffPlans(before, after).filter((c) => c.section === 'seccomp');
  t.same(changes.filter((c) => c.effect === 'weakening'), [], 'nothing weakens');
  t.ok(changes.some((c) => c.effect === 'strengthening' && /default action allow → errno ENOSYS/.test(c.description)));
  t.ok(changes.some((c) => c.effect === 'neutral' && c.description === `profile none → ${DEBIAN_PROFILE} (its rules are compared below)`));
  t.ok(changes.some((c) => c.effect === 'neutral' && c.description === 'rule added: allow read'), 'read was allowed before too');
  t.ok(changes.some((c) => c.effect === 'strengthening' && c.description === 'rule added: errno EPERM bpf'));
  const back = diffPlans(after, before).filter((c) => c.section === 'seccomp' && c.effect === 'weakening');
  t.ok(back.some((c) => c.description === 'rule removed: errno EPERM bpf'), 'and back again, bpf opens');
  t.notOk(back.some((c) => c.description === 'rule removed: allow read'), 'removing the allow of read opens nothing');
});
