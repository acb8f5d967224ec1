// Timeouts, limits, failures at each setup step, and the example package under each policy:
// whatever happens, nothing of a build remains on the host.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CLEAN_ENV, CLI, IS_ROOT, NOT_ROOT_REASON, ROOT, TOOL_INPUTS, leftovers, makePolicy, removeSandbox, run } from './helpers.js';

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a total timeout kills a build that forks children', async (t) => {
    const sb = makePolicy('guix-default', 'timeouts: { total: 2, max_silent: 0 }\n');
    t.teardown(() => removeSandbox(sb));
    const started = Date.now();
    const r = run(sb, 'sleep 100 & sleep 100 & echo started; wait');
    t.equal(r.status, 124);
    t.match(r.stderr, 'build timed out (timeouts.total)');
    t.ok(Date.now() - started < 20_000, 'killed well before the children would end');
    t.same(leftovers(sb), []);
  });

  t.test('a silent timeout kills a build that stops printing', async (t) => {
    const sb = makePolicy('guix-default', 'timeouts: { total: 0, max_silent: 2 }\n');
    t.teardown(() => removeSandbox(sb));
    const r = run(sb, '(sleep 100 &); echo quiet now; sleep 100');
    t.equal(r.status, 124);
    t.equal(r.stdout, 'quiet now\n');
    t.match(r.stderr, 'build silent for too long (timeouts.max_silent)');
    t.same(leftovers(sb), []);
  });

  t.test('a fork bomb under strict is stopped by its pids limit, and the host keeps working', async (t) => {
    const sb = makePolicy('strict', 'limits: { cgroup: { pids: 64 } }\ntimeouts: { total: 10, max_silent: 0 }\n');
    t.teardown(() => removeSandbox(sb));
    const r = run(sb, '(for i in $(seq 200); do sleep 30 & done) 2>/dev/null; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo "$n processes"; kill -9 -1 2>/dev/null; exit 0');
    t.equal(r.status, 0, r.stderr);
    const count = Number(/(\d+) processes/.exec(r.stdout)?.[1]);
    t.ok(count > 0 && count <= 64, `at most 64 processes at once (saw ${count})`);
    t.equal(spawnSync('/bin/true').status, 0, 'the host still starts processes');
    t.same(leftovers(sb), []);
  });

  t.test('a failure at each setup step stops the build before it runs and leaves nothing', async (t) => {
    const cases: [string, string, string[], string | RegExp, number][] = [
      ['a missing input (a refused spec)', '', ['--input', '/usr/does-not-exist'], /^stockade: refused: command line: inputs\[4\]: input \/usr\/does-not-exist: No such file or directory\n$/, 1],
      ['an unwritable build dir parent', '  build_dir_host: /proc/1\n', [], /mkdirat\(\d+, "guix-build-sh\.drv-0", 0700\): ENOENT \(No such file or directory\)/, 125],
      ['a missing mount source', '  paths: [{ source: /does/not/exist, target: /opt/x }]\n', [], /^stockade: \/\S+\/policy\.yaml:10:11: filesystem\.paths\[0\]: source \/does\/not\/exist: No such file or directory\n$/, 125],
      ['a mount target init cannot make', '  paths: [{ source: /usr/bin, target: /etc/hosts/x }]\n', [], /^stockade: sandbox setup failed: \/\S+\/policy\.yaml:10:11: filesystem\.paths\[0\]: mount at \/etc\/hosts\/x: openat2\(\d+, "hosts", .*\): ENOTDIR/, 125],
    ];
    for (const [what, filesystem, args, message, status] of cases) {
      const sb = makePolicy('guix-default', '', 4, filesystem);
      t.teardown(() => removeSandbox(sb));
      const r = run(sb, 'echo the builder ran', args);
      t.equal(r.status, status, `${what}: exit ${status}`);
      t.equal(r.stdout, '', `${what}: the builder never ran`);
      t.match(r.stderr, message, `${what}: names the failure`);
      t.same(leftovers(sb), [], `${what}: nothing left behind`);
    }
  });

  t.test('an input or output reaching outside the allowed prefixes through a symlink is refused', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    symlinkSync('/etc', join(sb.dir, 'etc-link'));
    const input = run(sb, 'echo the builder ran', ['--input', join(sb.dir, 'etc-link')]);
    t.equal(input.status, 1, 'an input through a symlink: refused as a spec is');
    t.equal(input.stdout, '');
    t.equal(input.stderr, `stockade: refused: command line: inputs[4]: input ${join(sb.dir, 'etc-link')}: component "etc-link" is a symlink (to "/etc"); symlinks are not followed here\n`);
    const output = run(sb, 'echo the builder ran', ['--output', join(sb.dir, 'etc-link', 'stockade-test-out')]);
    t.equal(output.status, 1, 'an output through a symlink: refused as a spec is');
    t.match(output.stderr, `stockade: refused: output ${join(sb.dir, 'etc-link', 'stockade-test-out')}: component ${join(sb.dir, 'etc-link')} is a symlink (to "/etc")`);
    t.notOk(existsSync('/etc/stockade-test-out'), 'nothing made in /etc');
    t.same(leftovers(sb), []);
  });

  for (const policy of ['guix-default', 'strict']) {
    t.test(`the example package builds under ${policy} and its program runs`, async (t) => {
      const sb = makePolicy(policy);
      t.teardown(() => removeSandbox(sb));
      const src = join(sb.dir, 'hello-src');
      cpSync(join(ROOT, 'examples/hello'), src, { recursive: true });
      const out = join(sb.dir, 'out');
      const r = spawnSync(process.execPath, [
        CLI, 'run', '--policy', sb.policy, '--name', 'hello', ...TOOL_INPUTS.flatMap((i) => ['--input', i]), '--input', src,
        '--output', out, '--env', 'PATH=/usr/bin:/bin', '--', '/usr/bin/make', '-f', join(src, 'Makefile'), `SRC=${src}`, `out=${out}`,
      ], { encoding: 'utf8', env: CLEAN_ENV });
      t.equal(r.status, 0, r.stderr);
      const hello = spawnSync(join(out, 'bin/hello'), { encoding: 'utf8' });
      const builtAs = /^Hello from a program built in a Stockade sandbox \(built as uid (\d+)\)\.\n$/.exec(hello.stdout);
      t.ok(builtAs, hello.stdout);
      const uid = Number(builtAs?.[1]);
      t.ok(uid >= sb.firstUid && uid < sb.firstUid + sb.count, `built as uid ${uid}, a uid of the policy's pool`);
      t.ok(existsSync(join(out, 'bin/hello')));
      t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(sb.dir), 'no mount left');
      t.same(leftovers(sb), []);
    });
  }
}
