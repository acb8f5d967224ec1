// The init every build runs is dist/runtime/init.cjs, init.ts and its imports in one CommonJS
// file made by `npm run build` (scripts/bundle-init.mjs). That builds work with it is what every
// sandboxed build of the other runtime tests shows (e.g. sandbox.test.ts, "the builder is PID 1
// and sees only its own processes"); here: it stands alone, and without it builds refuse to start.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLEAN_ENV, IS_ROOT, NOT_ROOT_REASON, ROOT, leftovers, makePolicy, removeSandbox, runArgs } from './helpers.js';

const BUNDLE = join(ROOT, 'dist/runtime/init.cjs');

t.test('the init bundle is one file needing only node builtins and koffi', async (t) => {
  t.ok(existsSync(BUNDLE), `${BUNDLE} exists (npm run build)`);
  const source = readFileSync(BUNDLE, 'utf8');
  const required = [...source.matchAll(/\brequire\(\s*(["'])([^"']*)\1\s*\)/g)].map((m) => m[2]);
  t.same(required.filter((spec) => !spec.startsWith('node:')), [], 'require() loads only node: builtins');
  const madeRequires = [...source.matchAll(/createRequire\)?\([^)]*\)\(\s*(["'])([^"']*)\1\s*\)/g)].map((m) => m[2]);
  t.same(madeRequires, ['koffi'], 'and koffi, through its CommonJS build');
  t.notMatch(source, /\bimport\(/, 'no dynamic import');
});

t.test('the init bundle runs from a directory holding only itself and koffi', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stk-init-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(BUNDLE, join(dir, 'init.cjs'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(join(ROOT, 'node_modules/koffi'), join(dir, 'node_modules/koffi'));
  // A request on fd 3: init loads all of itself, reads it, and refuses to set up outside a PID namespace.
  writeFileSync(join(dir, 'request.json'), '{}');
  const request = openSync(join(dir, 'request.json'), 'r');
  t.teardown(() => closeSync(request));
  const r = spawnSync(process.execPath, [join(dir, 'init.cjs')], { stdio: ['ignore', 'pipe', 'pipe', request, 'pipe'], encoding: 'utf8', env: {}, cwd: '/' });
  t.equal(r.status, 125, 'SETUP_FAILED');
  t.equal(r.stderr, '');
  const status = r.output[4] as unknown as string;
  t.same(status.split('\n').filter(Boolean).map((line) => JSON.parse(line)), [
    { error: `init is pid ${r.pid}, not PID 1 of a fresh PID namespace` },
  ], 'the refusal, on fd 4');
});

for (const [what, breakIt, message] of [
  ['without the bundle', (dist: string) => rmSync(join(dist, 'runtime/init.cjs')), 'is missing: run `npm run build`'],
  // tsc ran again after the last bundling: the bundle would run the old init.
  ['with a bundle older than init.js', (dist: string) => utimesSync(join(dist, 'runtime/init.js'), new Date(), new Date(Date.now() + 60_000)), `is older than`],
] as const) {
  t.test(`${what} a build does not start, and says to run npm run build`, { skip: !IS_ROOT && NOT_ROOT_REASON }, async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    // A checkout where only tsc ran.
    const checkout = join(sb.dir, 'checkout');
    cpSync(join(ROOT, 'dist'), join(checkout, 'dist'), { recursive: true });
    breakIt(join(checkout, 'dist'));
    t.ok(existsSync(join(checkout, 'dist/runtime/init.js')));
    copyFileSync(join(ROOT, 'package.json'), join(checkout, 'package.json'));
    for (const dir of ['node_modules', 'policies']) symlinkSync(join(ROOT, dir), join(checkout, dir));

    const name = `init-bundle-${randomBytes(4).toString('hex')}`;
    // Without --single-threaded (and the CLI): this process cannot fork init, so it spawns the bundle.
    const args = runArgs(sb, 'echo the builder ran', ['--name', name]).slice(2);
    const r = spawnSync(process.execPath, [join(checkout, 'dist/cli/main.js'), ...args], { encoding: 'utf8', env: CLEAN_ENV, timeout: 60_000 });
    t.equal(r.status, 125, r.stderr);
    t.equal(r.stdout, '', 'the builder never ran');
    t.match(r.stderr, `init bundle ${join(checkout, 'dist/runtime/init.cjs')} ${message}`);
    t.match(r.stderr, 'run `npm run build`');
    t.same(leftovers(sb).filter((l) => !l.startsWith('cgroups under')), []);
    const cgroups = ['/sys/fs/cgroup/memory/stockade', '/sys/fs/cgroup/pids/stockade', '/sys/fs/cgroup/unified/stockade', '/sys/fs/cgroup/stockade']
      .flatMap((root) => (existsSync(root) ? readdirSync(root).filter((n) => n.startsWith(name + '-')) : []));
    t.same(cgroups, [], "the build's cgroups are gone");
  });
}
