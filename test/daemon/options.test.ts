// guix-daemon's options on `stockade daemon`, observed through builds: the daemon's bounds
// apply, a policy's tighter ones stay, and bad options stop the start.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../runtime/helpers.js';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon, shSpec } from './helpers.js';

t.test('bad options are usage errors, before anything starts', async (t) => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'daemon', '--socket', '/nonexistent/s.sock', ...args], { encoding: 'utf8' });
  const missing = run('--chroot-directory=/nonexistent-stockade-dir');
  t.equal(missing.status, 2);
  t.match(missing.stderr, /--chroot-directory=\/nonexistent-stockade-dir: ENOENT/);
  t.match(run('--chroot-directory=/tmp').stderr, /--chroot-directory=\/tmp would hide \/tmp \(set up by Stockade itself\)/);
  t.match(run('--chroot-directory=relative').stderr, /--chroot-directory needs an absolute path, got 'relative'/);
  t.match(run('--build-users-group=no-such-group-here').stderr, /--build-users-group: no group named 'no-such-group-here'/);
  t.match(run('--timeout', '1.5').stderr, /--timeout needs a whole number, got '1.5'/);
  const help = spawnSync(process.execPath, [CLI, 'daemon', '--help'], { encoding: 'utf8' });
  for (const option of ['--build-users-group=GROUP', '--chroot-directory=DIR', '--max-jobs', '--cores', '--max-silent-time', '--timeout', '--keep-failed']) t.match(help.stdout, option);
});

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
} else {
  t.test('--timeout, --cores and --chroot-directory reach the build; a range pool is refused under --build-users-group', async (t) => {
    const shared = mkdtempSync(join(tmpdir(), 'stk-chroot-dir-'));
    t.teardown(() => rmSync(shared, { recursive: true, force: true }));
    chmodSync(shared, 0o755);
    mkdirSync(join(shared, 'sub'));
    writeFileSync(join(shared, 'sub', 'marker'), 'shared\n');
    const d = new TestDaemon({ args: ['--timeout', '5', '--cores', '1', '--keep-failed', `--chroot-directory=${shared}`], extra: 'environment:\n  set: { NIX_BUILD_CORES: "{cores}" }\n' });
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    t.teardown(() => c.close());
    c.build('test', { ...shSpec('seen', `cat ${shared}/sub/marker; echo cores=$NIX_BUILD_CORES; touch ${shared}/x 2>/dev/null || echo read-only`), cores: 4 });
    const seen = await c.waitFor('finished');
    t.equal(seen.outcome, 'succeeded', seen.message ?? '');
    t.equal(c.logOf(seen.id), 'shared\ncores=1\nread-only\n');
    c.build('test', shSpec('slow', 'sleep 30'));
    const slow = await c.waitFor('finished', (e) => e.id !== seen.id);
    t.equal(slow.outcome, 'timeout', 'the daemon\'s 5 s beats the policy\'s timeouts.total');
    const kept = new RegExp(`build ${slow.id}: timeout .*; build directory kept at (\\S+) \\(--keep-failed\\)`).exec(d.log);
    t.ok(kept, 'the failed build\'s directory is kept and its place logged');
    if (kept) {
      t.ok(existsSync(kept[1]), kept[1]);
      rmSync(kept[1], { recursive: true, force: true });
    }
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);

    const g = new TestDaemon({ args: ['--build-users-group=root'] });
    t.teardown(() => g.remove());
    await g.start();
    const r = await g.client(['--policy', 'test', '--', '/bin/true']);
    t.equal(r.status, 1);
    t.match(r.stderr, /refused-spec: policy '[^']+' takes build users from uids \d+-\d+; this daemon builds only as members of 'root' \(--build-users-group\)/);
    t.equal(await g.stop(), 0);
  });
}
