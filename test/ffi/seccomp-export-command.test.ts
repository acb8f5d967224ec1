// `stockade seccomp export`: argument parsing and the export of a Plan's filter.
import t from 'tap';
import type { Plan } from '../../src/plan/types.js';
import { exportCommand, parseSeccompArgs } from '../../src/seccomp/export-command.js';

t.test('arguments', async (t) => {
  t.same(parseSeccompArgs(['export', 'p.yaml']), { kind: 'export', policy: 'p.yaml', format: 'pfc' }, 'pfc by default');
  t.same(parseSeccompArgs(['export', 'p.yaml', '--format', 'bpf']), { kind: 'export', policy: 'p.yaml', format: 'bpf' });
  t.same(parseSeccompArgs(['export', '-f', 'json', 'p.yaml']), { kind: 'export', policy: 'p.yaml', format: 'json' });
  t.same(parseSeccompArgs(['--help']), { kind: 'help' });
  t.same(parseSeccompArgs(['export', '-h']), { kind: 'help' });
  t.match(parseSeccompArgs([]), { kind: 'usage-error', message: 'missing subcommand' });
  t.match(parseSeccompArgs(['import', 'p.yaml']), { kind: 'usage-error', message: "unknown subcommand 'import'" });
  t.match(parseSeccompArgs(['export']), { kind: 'usage-error', message: 'missing POLICY' });
  t.match(parseSeccompArgs(['export', 'a', 'b']), { kind: 'usage-error', message: "unexpected argument 'b'" });
  t.match(parseSeccompArgs(['export', 'a', '--format', 'yaml']), { kind: 'usage-error', message: "unknown format 'yaml' (pfc, bpf or json)" });
  t.match(parseSeccompArgs(['export', 'a', '--verbose']), { kind: 'usage-error', message: /verbose/ });
});

const plan = (seccomp: Plan['seccomp']): Pick<Plan, 'policy' | 'seccomp'> =>
  ({ policy: { name: 'strict', file: 'policies/strict.yaml', description: '', fixedOutput: false, chain: [] }, seccomp });

t.test('export of a plan', async (t) => {
  const seccomp = {
    defaultAction: { kind: 'allow' as const },
    architectures: ['x86_64', 'x86', 'x32'],
    rules: [{ syscall: 'mount', action: { kind: 'errno' as const, errno: 1, name: 'EPERM' }, args: [], optional: false }],
  };
  const pfc = exportCommand(plan(seccomp), 'pfc').toString();
  t.match(pfc, /# filter for syscall "mount" \(165\)/);
  t.equal(JSON.parse(exportCommand(plan(seccomp), 'json').toString()).rules[0].syscall, 'mount');
  t.throws(() => exportCommand(plan(null), 'pfc'), { message: "policy 'strict' (policies/strict.yaml) has no seccomp filter" });
});

t.test('the export of a profile-based plan names the profile', async (t) => {
  const seccomp = {
    defaultAction: { kind: 'errno' as const, errno: 38, name: 'ENOSYS' },
    architectures: ['x86_64'],
    rules: [
      { syscall: 'read', action: { kind: 'allow' as const }, args: [], optional: true, fromProfile: true as const },
      { syscall: 'mount', action: { kind: 'errno' as const, errno: 1, name: 'EPERM' }, args: [], optional: false },
    ],
    profile: { path: '/etc/profiles/build.json', defaultFrom: 'profile' as const, architecturesFrom: 'policy' as const },
  };
  const pfc = exportCommand(plan(seccomp), 'pfc').toString();
  t.match(pfc, /^# based on the seccomp profile \/etc\/profiles\/build\.json: 1 of its rules, 1 of the policy's own\n# default action from the profile, architectures from the policy\n/);
  t.match(pfc, /# filter for syscall "read"/, 'then the filter');
  const json = JSON.parse(exportCommand(plan(seccomp), 'json').toString());
  t.same(json.profile, seccomp.profile);
  t.same(json.rules.map((r: { syscall: string; fromProfile?: boolean }) => [r.syscall, r.fromProfile ?? false]), [['read', true], ['mount', false]]);
  const plain = exportCommand(plan({ ...seccomp, profile: undefined }), 'pfc').toString();
  t.notMatch(plain, /based on/, 'no profile, no note');
});
