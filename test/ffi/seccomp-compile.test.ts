// Unit tests of the seccomp compiler: building and exporting filters, nothing loaded.
import t from 'tap';
import type { SeccompPlan, SeccompRule } from '../../src/plan/types.js';
import { compileSeccomp, exportSeccomp, packConditions, actionValue } from '../../src/seccomp/compile.js';

const EPERM = { kind: 'errno', errno: 1, name: 'EPERM' } as const;
const deny = (syscall: string, extra: Partial<SeccompRule> = {}): SeccompRule => ({ syscall, action: EPERM, args: [], optional: false, ...extra });
const plan = (rules: SeccompRule[], architectures = ['x86_64', 'x86', 'x32']): SeccompPlan => ({
  defaultAction: { kind: 'allow' },
  architectures,
  rules,
});

t.test('actions map to libseccomp values', async (t) => {
  t.equal(actionValue({ kind: 'allow' }), 0x7fff0000);
  t.equal(actionValue({ kind: 'errno', errno: 38, name: 'ENOSYS' }), 0x00050026);
  t.equal(actionValue({ kind: 'kill_process' }), 0x80000000);
  t.equal(actionValue({ kind: 'kill_thread' }), 0);
  t.equal(actionValue({ kind: 'trap' }), 0x00030000);
  t.equal(actionValue({ kind: 'log' }), 0x7ffc0000);
  t.throws(() => actionValue({ kind: 'errno', errno: 5000, name: 'E?' }), { message: /outside 0\.\.4095/ });
});

t.test('conditions become struct scmp_arg_cmp values', async (t) => {
  const packed = packConditions('chmod', [
    { index: 1, op: 'masked_eq', mask: 0o4000, value: 0o4000 },
    { index: 0, op: 'eq', value: -1 },
  ])!;
  t.same(packed[0], { arg: 1, op: 7, datum_a: 0o4000n, datum_b: 0o4000n }, 'SCMP_CMP_MASKED_EQ: datum_a is the mask, datum_b the value');
  t.same(packed[1], { arg: 0, op: 4, datum_a: 0xffffffffffffffffn, datum_b: 0n }, 'SCMP_CMP_EQ; negative values are two\'s complement');
  t.equal(packConditions('read', []), null);
  t.throws(() => packConditions('x', [{ index: 6, op: 'eq', value: 0 }]), { message: /index 6 is outside 0\.\.5/ });
  t.throws(() => packConditions('x', [{ index: 0, op: 'masked_eq', value: 0 }]), { message: /masked_eq needs a mask/ });
  t.throws(() => packConditions('x', [{ index: 0, op: 'like' as 'eq', value: 0 }]), { message: /unknown operator 'like'/ });
});

t.test('unknown syscall names are all named; optional ones are skipped and reported', async (t) => {
  t.throws(() => compileSeccomp(plan([deny('unshare'), deny('no_such_call'), deny('nor_this_one')])), {
    message: /^seccomp: syscalls unknown to libseccomp \d+\.\d+\.\d+: no_such_call, nor_this_one$/,
  });
  const compiled = compileSeccomp(plan([deny('unshare'), deny('no_such_call', { optional: true })]));
  t.teardown(() => compiled.release());
  t.same(compiled.skipped, ['no_such_call']);
  t.same(compiled.architectures, ['x86_64', 'x86', 'x32']);
});

t.test('bad architectures and empty lists are refused', async (t) => {
  t.throws(() => compileSeccomp(plan([deny('unshare')], ['x86_64', 'pdp11'])), { message: "seccomp: unknown architecture \"pdp11\"" });
  t.throws(() => compileSeccomp(plan([deny('unshare')], [])), { message: /lists no architecture/ });
  const native = compileSeccomp(plan([deny('unshare')], ['native']));
  t.same(native.architectures, ['x86_64'], 'native resolves to x86_64');
  native.release();
});

t.test('pfc export covers every planned architecture with the rules', async (t) => {
  const pfc = exportSeccomp(
    plan([deny('unshare'), deny('chmod', { args: [{ index: 1, op: 'masked_eq', mask: 0o4000, value: 0o4000 }] })]),
    'pfc',
  ).toString();
  for (const arch of ['x86_64', 'x86', 'x32']) t.match(pfc, `# filter for arch ${arch} (`, `${arch} present`);
  t.match(pfc, /if \(\$syscall == 272\)\n\s+action ERRNO\(1\);/, 'x86_64 unshare denied');
  t.match(pfc, /\$syscall == 1073742096\b/, 'x32 unshare (272 | 0x40000000) present');
  t.match(pfc, /\$syscall == 310\b/, 'x86 unshare (310) present');
  t.match(pfc, /\$a1.lo32 & 0x00000800 == 2048/, 'masked_eq on S_ISUID');
  t.match(pfc, '# invalid architecture action\naction KILL_PROCESS;', 'other ABIs kill the process');
  const x86only = exportSeccomp(plan([deny('unshare')], ['x86']), 'pfc').toString();
  t.notMatch(x86only, 'filter for arch x86_64', 'native left out when the plan leaves it out');
});

t.test('bpf export is a whole number of sock_filter instructions', async (t) => {
  const bpf = exportSeccomp(plan([deny('unshare')]), 'bpf');
  t.ok(bpf.length > 0);
  t.equal(bpf.length % 8, 0);
});

t.test('json export is the normalised plan', async (t) => {
  const json = JSON.parse(exportSeccomp(plan([deny('unshare'), deny('no_such_call', { optional: true })], ['native', 'x32']), 'json').toString());
  t.same(json.architectures, ['x86_64', 'x32']);
  t.same(json.skipped, ['no_such_call']);
  t.same(json.rules.map((r: SeccompRule) => r.syscall), ['unshare']);
  t.same(json.defaultAction, { kind: 'allow' });
});

t.test('a rule repeating the default action changes nothing and is accepted', async (t) => {
  const compiled = compileSeccomp({ defaultAction: EPERM, architectures: ['x86_64'], rules: [deny('mount'), { ...deny('read'), action: { kind: 'allow' } }] });
  compiled.release();
  t.pass();
});
