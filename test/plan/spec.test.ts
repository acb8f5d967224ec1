// Build specs: what a policy refuses (SpecRefused, every problem at once, exact text), spec files
// with schema errors (FILE:LINE:COL), and where an allowed spec's variables land.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planFromFile } from '../../src/plan/index.js';
import { loadSpecFile, SpecRefused } from '../../src/plan/spec.js';
import { formatDiagnostic, PolicyError } from '../../src/policy/errors.js';
import type { BuildSpec } from '../../src/policy/types.js';

const dir = mkdtempSync(join(tmpdir(), 'stockade-spec-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const POLICY = join(dir, 'store.yaml');
writeFileSync(
  POLICY,
  `stockade: 1
name: store
filesystem:
  inputs: { under: [/gnu/store] }
  outputs: { under: [/gnu/store/outputs] }
environment:
  set: { PATH: /path-not-set, HOME: /homeless-shelter }
  spec_allow: [CFLAGS, PATH, TMPDIR, "LC_*"]
`,
);
const CLOSED = join(dir, 'closed.yaml');
writeFileSync(CLOSED, 'stockade: 1\nname: closed\n');

const OK: BuildSpec = { name: 'hello', builder: '/gnu/store/abc-bash/bin/bash', inputs: ['/gnu/store/abc-bash'] };

/** The problems a spec is refused for; throws (failing the test) if it is planned. */
function refusal(spec: BuildSpec, policy = POLICY, specSource?: string): { problems: string[]; message: string } {
  try {
    planFromFile(policy, { spec, specSource });
  } catch (err) {
    if (err instanceof SpecRefused) return { problems: err.problems, message: err.message };
    throw err;
  }
  throw new Error(`spec ${JSON.stringify(spec)} was planned, expected SpecRefused`);
}

const REFUSALS: [string, Partial<BuildSpec>, string, string?][] = [
  ['input outside inputs.under', { inputs: ['/etc/shadow'] }, 'input /etc/shadow is not under filesystem.inputs.under (/gnu/store)'],
  ['input sharing only a name prefix', { inputs: ['/gnu/storage'] }, 'input /gnu/storage is not under filesystem.inputs.under (/gnu/store)'],
  ['input with ..', { inputs: ['/gnu/store/../../etc'] }, `input "/gnu/store/../../etc" contains '..'`],
  ['relative input', { inputs: ['gnu/store/abc'] }, 'input "gnu/store/abc" is not an absolute path'],
  ['output outside outputs.under', { outputs: ['/gnu/store/abc-hello'] }, 'output /gnu/store/abc-hello is not under filesystem.outputs.under (/gnu/store/outputs)'],
  ['output with ..', { outputs: ['/gnu/store/outputs/..'] }, `output "/gnu/store/outputs/.." contains '..'`],
  ['relative output', { outputs: ['out'] }, 'output "out" is not an absolute path'],
  ['output where the policy allows none', { inputs: [], outputs: ['/gnu/store/outputs/x'] }, 'output /gnu/store/outputs/x is not under filesystem.outputs.under (nothing allowed)', CLOSED],
  ['env name not allowed by spec_allow', { env: { LD_PRELOAD: '/tmp/evil.so' } }, 'environment variable LD_PRELOAD is not allowed by environment.spec_allow (CFLAGS, PATH, TMPDIR, LC_*)'],
  ['env where the policy allows none', { inputs: [], env: { CFLAGS: '-O2' } }, 'environment variable CFLAGS is not allowed by environment.spec_allow (none)', CLOSED],
  ['bad name', { name: 'hello world' }, `name "hello world" must be letters, digits, '.', '_', '+', '-' (at most 200)`],
  ['name with a slash', { name: '../hello' }, `name "../hello" must be letters, digits, '.', '_', '+', '-' (at most 200)`],
  ['name too long', { name: 'a'.repeat(201) }, `name "${'a'.repeat(201)}" must be letters, digits, '.', '_', '+', '-' (at most 200)`],
  ['negative cores', { cores: -1 }, 'cores must be a whole number ≥ 0, got -1'],
  ['fractional cores', { cores: 1.5 }, 'cores must be a whole number ≥ 0, got 1.5'],
  ['relative builder', { builder: 'bash' }, 'builder "bash" is not an absolute path'],
];

for (const [name, change, problem, policy] of REFUSALS) {
  t.test(`refused: ${name}`, async (t) => {
    const { problems, message } = refusal({ ...OK, ...change }, policy);
    t.strictSame(problems, [problem]);
    t.equal(message, `build spec: refused: ${problem}`);
  });
}

t.test('every problem of a spec is reported at once, named after its source', async (t) => {
  const { problems, message } = refusal(
    { name: 'a b', builder: 'sh', inputs: ['/opt/x', 'rel'], outputs: ['/tmp/out'], env: { EVIL: '1' }, cores: -2 },
    POLICY,
    'hello.yaml',
  );
  const expected = [
    'input /opt/x is not under filesystem.inputs.under (/gnu/store)',
    'input "rel" is not an absolute path',
    'output /tmp/out is not under filesystem.outputs.under (/gnu/store/outputs)',
    'builder "sh" is not an absolute path',
    'environment variable EVIL is not allowed by environment.spec_allow (CFLAGS, PATH, TMPDIR, LC_*)',
    `name "a b" must be letters, digits, '.', '_', '+', '-' (at most 200)`,
    'cores must be a whole number ≥ 0, got -2',
  ];
  t.strictSame(problems, expected);
  t.equal(message, expected.map((p) => `hello.yaml: refused: ${p}`).join('\n'));
});

t.test('inputs are capped: 4096 by default, limits.inputs otherwise; the refusal names the count and the cap', async (t) => {
  const inputs = (n: number) => Array.from({ length: n }, (_, i) => `/gnu/store/${i}-input`);
  t.equal(planFromFile(POLICY, { spec: { ...OK, inputs: inputs(4096) } }).build.inputs.length, 4096);
  // Over the cap the inputs are not checked one by one: one problem, not one per input.
  t.strictSame(refusal({ ...OK, inputs: [...inputs(4096), '/opt/elsewhere'] }).problems, ['4097 inputs, more than limits.inputs allows (4096)']);
  const capped = join(dir, 'capped.yaml');
  writeFileSync(capped, 'stockade: 1\nname: capped\nextends: store.yaml\nlimits: { inputs: 2 }\n');
  t.equal(planFromFile(capped, { spec: { ...OK, inputs: inputs(2) } }).limits.maxInputs, 2);
  const { message } = refusal({ ...OK, inputs: inputs(3) }, capped, 'many.yaml');
  t.equal(message, 'many.yaml: refused: 3 inputs, more than limits.inputs allows (2)');
});

t.test('allowed inputs and outputs are normalised and bound', async (t) => {
  const plan = planFromFile(POLICY, { spec: { ...OK, inputs: ['/gnu/store//abc-bash/'], outputs: ['/gnu/store/outputs/hello'] } });
  t.strictSame(plan.build.inputs, ['/gnu/store/abc-bash']);
  t.strictSame(
    plan.mounts.filter((m) => m.role === 'input' || m.role === 'outputs-dir').map((m) => [m.role, m.type === 'bind' ? m.source : m.type, m.target, m.readonly]),
    [
      ['input', { kind: 'input', path: '/gnu/store/abc-bash' }, '/gnu/store/abc-bash', true],
      // The builder makes its output in a private directory of its build dir bound where the output goes, handed over afterwards.
      ['outputs-dir', { kind: 'outputs-dir', index: 0 }, '/gnu/store/outputs', false],
    ],
  );
});

t.test('outputs in one directory share one private directory, bound below none of the inputs there', async (t) => {
  const plan = planFromFile(POLICY, { spec: { ...OK, inputs: ['/gnu/store/outputs/abc-src'], outputs: ['/gnu/store/outputs/def-out', '/gnu/store/outputs/def-out-doc'] } });
  t.strictSame(
    plan.mounts.filter((m) => m.role === 'input' || m.role === 'outputs-dir').map((m) => [m.role, m.target]),
    // Parents first: the input is bound over its own path inside the private /gnu/store.
    [['outputs-dir', '/gnu/store/outputs'], ['input', '/gnu/store/outputs/abc-src']],
  );
});

t.test('an output inside another output, or listed twice, is refused', async (t) => {
  t.equal(refusal({ ...OK, outputs: ['/gnu/store/outputs/a', '/gnu/store/outputs/a/b'] }).message, 'build spec: refused: output /gnu/store/outputs/a/b lies inside output /gnu/store/outputs/a');
  t.equal(refusal({ ...OK, outputs: ['/gnu/store/outputs/a', '/gnu/store/outputs/a/'] }).message, 'build spec: refused: an output is listed more than once');
});

t.test("an output whose directory is another mount's target, or inside an input, or that is an input, is refused", async (t) => {
  const inInput = refusal({ ...OK, inputs: ['/gnu/store/outputs/abc'], outputs: ['/gnu/store/outputs/abc/out'] });
  t.equal(inInput.message, "build spec: refused: output /gnu/store/outputs/abc/out: its directory /gnu/store/outputs/abc is where input /gnu/store/outputs/abc is mounted; outputs are made in a directory of the build's own");
  const deeper = refusal({ ...OK, inputs: ['/gnu/store/outputs/abc'], outputs: ['/gnu/store/outputs/abc/lib/out'] });
  t.equal(deeper.message, 'build spec: refused: output /gnu/store/outputs/abc/lib/out lies inside input /gnu/store/outputs/abc');
  const both = refusal({ ...OK, inputs: ['/gnu/store/outputs/abc'], outputs: ['/gnu/store/outputs/abc'] });
  t.equal(both.message, 'build spec: refused: output /gnu/store/outputs/abc is also an input');
});

t.test('an allowed spec\'s variables land between the policy\'s and the build directory\'s', async (t) => {
  const plan = planFromFile(POLICY, {
    spec: { ...OK, env: { LC_ALL: 'C', CFLAGS: '-O2', PATH: '/gnu/store/outputs/abc-bash/bin', TMPDIR: '/elsewhere' } },
  });
  const dir = '/tmp/guix-build-hello.drv-0';
  // PATH overridden in place (as guix's map); TMPDIR set by the spec, then by the build directory, which wins.
  t.strictSame(Object.entries(plan.environment), [
    ['PATH', '/gnu/store/outputs/abc-bash/bin'],
    ['HOME', '/homeless-shelter'],
    ['LC_ALL', 'C'],
    ['CFLAGS', '-O2'],
    ['TMPDIR', dir],
    ['NIX_BUILD_TOP', dir],
    ['TEMPDIR', dir],
    ['TMP', dir],
    ['TEMP', dir],
    ['PWD', dir],
  ]);
});

t.test('a spec file with schema errors: every error with its LINE:COL, in file order', async (t) => {
  const file = join(dir, 'bad-spec.yaml');
  writeFileSync(file, 'name: hello\nbuilder: /bin/sh\ncores: -1\nenv:\n  1X: a\n  OK: 5\ninputs: /gnu/store\nbogus: 1\n');
  try {
    loadSpecFile(file);
    t.fail('loaded');
  } catch (err) {
    t.type(err, PolicyError);
    t.strictSame((err as PolicyError).diagnostics.map(formatDiagnostic), [
      `${file}:3:8: cores: must be >= 0, got -1`,
      `${file}:5:3: env: invalid key '1X': must be an environment variable name`,
      `${file}:6:7: env.OK: expected a string, got integer`,
      `${file}:7:9: inputs: expected a list, got string`,
      `${file}:8:1: unknown key 'bogus'`,
    ]);
  }
});

t.test('spec files: JSON, YAML syntax, missing keys, unreadable', async (t) => {
  const cases: [string, string, string[]][] = [
    ['spec.json', '{\n  "name": "hello",\n  "builder": 5\n}\n', ['3:14: builder: expected a string, got integer']],
    ['syntax.yaml', 'name: hello\nbuilder: [/bin/sh\n', ['3:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]']],
    ['missing.yaml', 'name: hello\n', ["1:1: missing required key 'builder'"]],
    ['list.yaml', '- name: hello\n', ['1:1: expected a map, got list']],
  ];
  for (const [name, text, expected] of cases) {
    const file = join(dir, name);
    writeFileSync(file, text);
    t.throws(() => loadSpecFile(file), { name: 'PolicyError', message: expected.map((e) => `${file}:${e}`).join('\n') }, name);
  }
  const absent = join(dir, 'absent.yaml');
  t.throws(() => loadSpecFile(absent), {
    message: `${absent}:1:1: cannot read build spec: no such file`,
  });
});

t.test('a spec file that loads is planned as written', async (t) => {
  const file = join(dir, 'hello.yaml');
  writeFileSync(file, 'name: hello\nbuilder: /gnu/store/outputs/abc-bash/bin/bash\nargs: [-c, make]\ninputs: [/gnu/store/outputs/abc-bash]\ncores: 4\nenv: { CFLAGS: -O2 }\n');
  const plan = planFromFile(POLICY, { spec: loadSpecFile(file), specSource: file });
  t.strictSame(plan.build, {
    name: 'hello',
    builder: '/gnu/store/outputs/abc-bash/bin/bash',
    args: ['-c', 'make'],
    dir: '/tmp/guix-build-hello.drv-0',
    hostParent: '/tmp',
    hostDirPrefix: 'guix-build-hello.drv-',
    inputs: ['/gnu/store/outputs/abc-bash'],
    outputs: [],
    inputsUnder: ['/gnu/store'],
    outputsUnder: ['/gnu/store/outputs'],
    cores: 4,
  });
  t.equal(plan.environment.CFLAGS, '-O2');
});
