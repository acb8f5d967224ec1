// The `validate` and `explain` commands as an admin runs them: exit statuses, what goes to
// stdout and stderr, FILE:LINE:COL diagnostics without stack traces, --json, --help, --version.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planFromFile } from '../../src/plan/index.js';
import { ensureBuilt } from '../helpers/child.js';

ensureBuilt();

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
process.chdir(ROOT);
const MAIN = join(ROOT, 'dist/cli/main.js');
// The test command builds first; a bare `npx tap` on a fresh checkout builds here.
if (!existsSync(MAIN)) {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
}

const dir = mkdtempSync(join(tmpdir(), 'stockade-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A fixed environment, so that `environment.pass` does not depend on who runs the tests. */
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', http_proxy: 'http://127.0.0.1:3128' };

function stockade(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: ROOT, env: ENV, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const SHIPPED = ['policies/guix-default.yaml', 'policies/fixed-output.yaml', 'policies/strict.yaml', 'policies/remote-exec.yaml'];
const INVALID = join(dir, 'invalid.yaml');
writeFileSync(INVALID, 'stockade: 1\nname: invalid\nhostname: -bad-\ndevices: [floppy]\n');
const INVALID_ERRORS = [
  `${INVALID}:3:11: hostname: must be a valid host name, got "-bad-"`,
  `${INVALID}:4:11: devices[0]: "floppy" is not one of: null, zero, full, random, urandom, tty, kvm, fuse, net/tun, pts, shm, fd`,
];
const VALIDATE_USAGE = 'usage: stockade validate [--json] [--policies DIR] FILE…';
const EXPLAIN_USAGE = 'usage: stockade explain [--spec SPEC] [--json] [--policies DIR] FILE';

t.test('validate: the shipped policies are valid', async (t) => {
  const r = stockade('validate', ...SHIPPED);
  t.equal(r.status, 0);
  t.equal(r.stdout, SHIPPED.map((f) => `${f}: valid\n`).join(''));
  t.equal(r.stderr, '');
});

t.test('validate: an invalid policy exits 1 with every FILE:LINE:COL on stderr, no stack', async (t) => {
  const r = stockade('validate', INVALID);
  t.equal(r.status, 1);
  t.equal(r.stdout, '');
  t.equal(r.stderr, INVALID_ERRORS.map((e) => e + '\n').join(''));
  t.notMatch(r.stderr, /\n\s+at /);
});

t.test('validate: valid and invalid files together', async (t) => {
  const r = stockade('validate', SHIPPED[0], INVALID);
  t.equal(r.status, 1);
  t.equal(r.stdout, `${SHIPPED[0]}: valid\n`);
  t.equal(r.stderr, INVALID_ERRORS.map((e) => e + '\n').join(''));
});

t.test('validate: an unknown key and two semantic errors are all reported, each at FILE:LINE:COL', async (t) => {
  const file = join(dir, 'typo.yaml');
  writeFileSync(file, 'stockade: 1\nname: typo\nhostnme: builder\nnetwork: slirp\ndevices: [zero, zero]\n');
  const errors = [
    { file, line: 3, col: 1, message: "unknown key 'hostnme'" },
    { file, line: 4, col: 10, message: 'network: slirp needs fixed_output: true (only fixed-output builds, checked by hash, may reach a network)' },
    { file, line: 5, col: 17, message: "devices[1]: 'zero' is already listed at devices[0]" },
  ];
  const r = stockade('validate', file);
  t.equal(r.status, 1);
  t.equal(r.stdout, '');
  t.equal(r.stderr, errors.map((e) => `${e.file}:${e.line}:${e.col}: ${e.message}\n`).join(''));
  const json = stockade('validate', '--json', file);
  t.equal(json.status, 1);
  t.strictSame(JSON.parse(json.stdout), { valid: false, files: [{ file, valid: false, errors }] });
});

t.test('validate: a missing file is a positioned error, not a crash', async (t) => {
  const r = stockade('validate', join(dir, 'absent.yaml'));
  t.equal(r.status, 1);
  t.equal(r.stderr, `${join(dir, 'absent.yaml')}:1:1: cannot read policy: no such file\n`);
});

t.test('validate: usage errors exit 2', async (t) => {
  const none = stockade('validate');
  t.equal(none.status, 2);
  t.equal(none.stdout, '');
  t.equal(none.stderr, `stockade: validate needs at least one policy file\n${VALIDATE_USAGE}\n`);
  const bad = stockade('validate', '--frobnicate', SHIPPED[0]);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /^stockade: Unknown option '--frobnicate'/);
  t.ok(bad.stderr.endsWith(`\n${VALIDATE_USAGE}\n`));
});

t.test('validate --json', async (t) => {
  const r = stockade('validate', '--json', SHIPPED[0], INVALID);
  t.equal(r.status, 1);
  t.equal(r.stderr, '');
  t.strictSame(JSON.parse(r.stdout), {
    valid: false,
    files: [
      { file: SHIPPED[0], valid: true, errors: [] },
      {
        file: INVALID,
        valid: false,
        errors: [
          { file: INVALID, line: 3, col: 11, message: 'hostname: must be a valid host name, got "-bad-"' },
          { file: INVALID, line: 4, col: 11, message: 'devices[0]: "floppy" is not one of: null, zero, full, random, urandom, tty, kvm, fuse, net/tun, pts, shm, fd' },
        ],
      },
    ],
  });
  const ok = stockade('validate', '--json', ...SHIPPED);
  t.equal(ok.status, 0);
  t.strictSame(JSON.parse(ok.stdout), { valid: true, files: SHIPPED.map((file) => ({ file, valid: true, errors: [] })) });
});

t.test('validate --policies: where extends NAME is looked up', async (t) => {
  const lib = mkdtempSync(join(dir, 'lib-'));
  writeFileSync(join(lib, 'site.yaml'), 'stockade: 1\nname: site\nhostname: site-builder\n');
  const child = join(dir, 'child.yaml');
  writeFileSync(child, 'stockade: 1\nname: child\nextends: site\n');
  t.equal(stockade('validate', child).status, 1);
  const r = stockade('validate', '--policies', lib, child);
  t.equal(r.status, 0);
  t.equal(r.stdout, `${child}: valid\n`);
});

t.test('--help: exit 0, usage on stdout', async (t) => {
  for (const [args, first] of [
    [['--help'], 'usage: stockade COMMAND [OPTIONS]'],
    [['help'], 'usage: stockade COMMAND [OPTIONS]'],
    [['validate', '--help'], VALIDATE_USAGE],
    [['explain', '-h'], EXPLAIN_USAGE],
  ] as const) {
    const r = stockade(...args);
    t.equal(r.status, 0, args.join(' '));
    t.equal(r.stdout.split('\n')[0], first, args.join(' '));
    t.equal(r.stderr, '', args.join(' '));
  }
  t.match(stockade('--help').stdout, /\n {2}validate +check policy files\n[^]*\n {2}explain +show the Plan/);
});

t.test('no command or an unknown one: exit 2', async (t) => {
  const none = stockade();
  t.equal(none.status, 2);
  t.equal(none.stdout.split('\n')[0], 'usage: stockade COMMAND [OPTIONS]');
  const unknown = stockade('frobnicate');
  t.equal(unknown.status, 2);
  t.equal(unknown.stderr.split('\n')[0], "stockade: unknown command 'frobnicate'");
});

t.test('--version prints the package version', async (t) => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = stockade(flag);
    t.equal(r.status, 0);
    t.equal(r.stdout, `stockade ${version}\n`);
  }
});

t.test('explain --json is planFromFile\'s Plan', async (t) => {
  for (const file of SHIPPED) {
    const r = stockade('explain', '--json', file);
    t.equal(r.status, 0, file);
    t.strictSame(JSON.parse(r.stdout), JSON.parse(JSON.stringify(planFromFile(file, { callerEnv: ENV }))), file);
  }
  const fixed = JSON.parse(stockade('explain', '--json', 'policies/fixed-output.yaml').stdout);
  t.equal(fixed.environment.http_proxy, 'http://127.0.0.1:3128', 'the caller\'s environment is passed as the policy says');
});

t.test('explain --spec: planned as written, or refused with exit 1', async (t) => {
  const spec = join(dir, 'hello.yaml');
  writeFileSync(spec, 'name: hello\nbuilder: /usr/bin/make\ninputs: [/usr]\ncores: 2\nenv: { FOO: bar }\n');
  const r = stockade('explain', '--json', '--spec', spec, SHIPPED[0]);
  t.equal(r.status, 0);
  const plan = JSON.parse(r.stdout);
  t.strictSame([plan.build.name, plan.build.builder, plan.build.inputs, plan.build.cores, plan.environment.FOO], ['hello', '/usr/bin/make', ['/usr'], 2, 'bar']);

  const refused = join(dir, 'refused.yaml');
  writeFileSync(refused, 'name: hello\nbuilder: /usr/bin/make\ninputs: [/home/me]\n');
  const no = stockade('explain', '--spec', refused, SHIPPED[0]);
  t.equal(no.status, 1);
  t.equal(no.stdout, '');
  t.equal(no.stderr, `${refused}:3:10: refused: input /home/me is not under filesystem.inputs.under (/gnu/store, /usr, /bin, /lib, /lib64)\n`);

  const broken = join(dir, 'broken-spec.yaml');
  writeFileSync(broken, 'name: hello\nbuilder: make\nbogus: 1\n');
  const bad = stockade('explain', '--spec', broken, SHIPPED[0]);
  t.equal(bad.status, 1);
  t.equal(bad.stderr, `${broken}:2:10: builder: must be an absolute path, got "make"\n${broken}:3:1: unknown key 'bogus'\n`);
});

t.test('explain: text view, invalid policy, usage', async (t) => {
  const text = stockade('explain', SHIPPED[2]);
  t.equal(text.status, 0);
  const lines = text.stdout.split('\n');
  t.equal(lines[0], 'policy strict: guix-default hardened with seccomp, Landlock and resource limits.');
  t.equal(lines[1], '  from policies/strict.yaml → policies/guix-default.yaml');
  t.ok(lines.includes('  PATH=/path-not-set'), 'environment listed');
  t.ok(lines.includes('  default allow, architectures x86_64, x86, x32, 79 rules'), 'seccomp summarised');
  t.ok(lines.includes('  inputs: at most 4096'), 'input cap shown');
  t.ok(lines.includes('  outputs: at most 4294967296 bytes'), 'output limit shown');
  t.ok(lines.includes('  build dir: tmpfs of 4294967296 bytes (in memory)'), 'build dir limit shown');
  t.ok(stockade('explain', SHIPPED[0]).stdout.split('\n').includes("  build dir: on the host's disk, unlimited"), 'no build dir limit in guix-default');
  const invalid = stockade('explain', INVALID);
  t.equal(invalid.status, 1);
  t.equal(invalid.stderr, INVALID_ERRORS.map((e) => e + '\n').join(''));
  const usage = stockade('explain', SHIPPED[0], SHIPPED[1]);
  t.equal(usage.status, 2);
  t.equal(usage.stderr, `stockade: explain needs exactly one policy file\n${EXPLAIN_USAGE}\n`);
});

t.test('validate: extends /dev/zero is refused at once, at the extends value', async (t) => {
  const file = join(dir, 'zero.yaml');
  writeFileSync(file, 'stockade: 1\nname: zero\nextends: /dev/zero\n');
  const r = stockade('validate', file);
  t.equal(r.status, 1);
  t.equal(r.stderr, `${file}:3:10: extends: cannot read policy /dev/zero: not a regular file (a character device)\n`);
});
