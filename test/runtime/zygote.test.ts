// `stockade run` forks its build's init from its own process (src/runtime/zygote.ts): what a
// builder inherits that way, a fork that dies before exec retried, repeated failures falling back
// to a fresh Node init, and many builds forked from one process.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CLEAN_ENV, CLI, IS_ROOT, NOT_ROOT_REASON, ROOT, leftovers, makePolicy, removeSandbox, run, runArgs } from './helpers.js';

const FAULTS = 'STOCKADE_TEST_FORK_FAULTS';
/** Builds forked from one process in the stress test; STOCKADE_STRESS_BUILDS for more (10,000 by hand). */
const STRESS_BUILDS = Number(process.env.STOCKADE_STRESS_BUILDS ?? 150);

/** What the builder sees of its process: pid, open fds, POSIX timers, environment, signal state. */
const PROBE = [
  'echo pid $$',
  // Before any pipeline or $(…), whose pipe the shell would hold.
  'echo fds; ls /proc/$$/fd; echo end',
  'echo timers $(grep -c ID /proc/$$/timers)',
  'env | sort',
  'grep "^Seccomp_filters" /proc/$$/status',
  // exec: the builder's own state, not that of a shell waiting for its child (dash blocks signals then).
  'exec grep -E "^Sig(Blk|Ign)" /proc/self/status',
].join('; ');

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  const sb = makePolicy('guix-default');
  t.teardown(() => removeSandbox(sb));
  const lostLines = (stderr: string) => stderr.split('\n').filter((l) => /init: forked set-up \d of 3 lost/.test(l));
  // A variable of the CLI's own environment that must not reach the builder either way.
  const env = (faults?: string) => ({ ...CLEAN_ENV, STOCKADE_CANARY: 'leaked', ...(faults ? { [FAULTS]: faults } : {}) });

  t.test('forked or fresh, the builder inherits the same: only fds 0-2, no signal blocked or ignored, no timers, the planned environment', async (t) => {
    const seen: Record<string, string> = {};
    for (const [how, faults] of [['forked', undefined], ['node', 'crash:3']] as const) {
      const r = run(sb, PROBE, ['--json'], env(faults));
      t.equal(r.status, 0, r.stderr);
      const result = JSON.parse(r.stdout);
      t.equal(result.init, how, `init ${how}`);
      // With --json the builder's output is on stderr, after Stockade's own notices.
      const out = r.stderr.split('\n').filter((l) => !l.startsWith('stockade: ')).join('\n');
      t.match(out, /^pid 1$/m, 'the builder is PID 1');
      t.match(out, /^fds\n0\n1\n2\nend$/m, 'fds 0, 1 and 2 only');
      t.match(out, /^SigBlk:\t0+\nSigIgn:\t0+$/m, 'no signal blocked or ignored');
      t.match(out, /^timers 0$/m, 'no POSIX timer');
      t.match(out, /^Seccomp_filters:\t2$/m, "the runtime's two filters only: vsock closed, MADV_DONTFORK a no-op");
      t.notMatch(out, /STOCKADE_CANARY|STOCKADE_TEST/, "nothing of the CLI's environment");
      seen[how] = out;
    }
    t.equal(seen.forked, seen.node, 'the same, down to the environment, either way');
    t.same(leftovers(sb), []);
  });

  t.test('a forked init that dies before exec is retried on a fresh fork; the builder runs once', async (t) => {
    const r = run(sb, 'echo ran; exit 7', ['--json'], env('crash:1'));
    t.equal(r.status, 7, "the builder's status");
    const lost = lostLines(r.stderr);
    t.equal(lost.length, 1, r.stderr);
    t.match(lost[0], /forked set-up 1 of 3 lost \(pid \d+: it ended \(SIGSEGV\) before set-up\); retrying on a fresh fork/);
    t.equal(r.stderr.split('\n').filter((l) => l === 'ran').length, 1, 'the builder ran once');
    t.match(JSON.parse(r.stdout), { init: 'forked', outcome: 'failed', exitCode: 7 });
    t.same(leftovers(sb), []);
  });

  t.test('a forked init that hangs before exec is killed at the deadline and the build retried', async (t) => {
    const r = run(sb, 'echo ran', [], env('hang:1,deadline:1000'));
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, 'ran\n', 'the builder ran once');
    const lost = lostLines(r.stderr);
    t.equal(lost.length, 1, r.stderr);
    t.match(lost[0], /forked set-up 1 of 3 lost \(pid \d+: no word from it within 1 s\); retrying on a fresh fork/);
    const pid = /pid (\d+)/.exec(lost[0])![1];
    t.notOk(existsSync(`/proc/${pid}`), 'the hung child is gone (it was root, not a pool user: leftovers() would not see it)');
    t.same(leftovers(sb), []);
  });

  t.test('cancelled while a forked init hangs before exec: it ends at once, not at the deadline, and is not retried', async (t) => {
    // A deadline of 10 minutes: had cancelling waited for it, this test would time out.
    const cli = spawn(process.execPath, runArgs(sb, 'echo ran'), { env: { ...env('hang:1,deadline:600000'), STOCKADE_BUILDS_DIR: sb.registry } });
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (d) => (stdout += d));
    cli.stderr.on('data', (d) => (stderr += d));
    // The child is forked and hanging well before this.
    const interrupt = setTimeout(() => cli.kill('SIGINT'), 2000);
    const status = await new Promise<number | null>((resolve) => cli.on('close', resolve));
    clearTimeout(interrupt);
    t.equal(status, 130, stderr);
    t.equal(stdout, '', 'the builder never ran');
    t.match(stderr, 'stockade: build cancelled');
    t.same(lostLines(stderr), [], 'not retried');
    t.same(leftovers(sb), []);
  });

  t.test('after 3 lost forks the build falls back to a fresh Node init, and is still correct', async (t) => {
    const r = run(sb, 'echo ran', [], env('crash:3'));
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, 'ran\n', 'the builder ran once');
    const lost = lostLines(r.stderr);
    t.equal(lost.length, 3, r.stderr);
    t.match(lost[2], /forked set-up 3 of 3 lost .*; starting a fresh Node init/);
    t.same(leftovers(sb), []);
  });

  t.test("a forked init's set-up failure is the build's: reported, not retried", async (t) => {
    // Without /lib the builder's dynamic loader is missing: execve fails in the sandbox.
    const args = ['--single-threaded', CLI, 'run', '--policy', sb.policy, '--input', '/bin', '--input', '/usr', '--json', '--', '/bin/true'];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...env(), STOCKADE_BUILDS_DIR: sb.registry } });
    t.equal(r.status, 125, r.stderr);
    t.match(r.stderr, /sandbox setup failed: execve\("\/bin\/true".*ENOENT/);
    t.same(lostLines(r.stderr), [], 'no retry');
    t.match(JSON.parse(r.stdout), { init: 'forked', outcome: 'setup-failed' });
    t.same(leftovers(sb), []);
  });

  t.test(`${STRESS_BUILDS} builds forked from one process: each exits 0 once, retries counted, nothing left`, async (t) => {
    const stress = makePolicy('guix-default');
    t.teardown(() => removeSandbox(stress));
    const r = spawnSync(process.execPath, ['--single-threaded', join(ROOT, 'test/runtime/zygote-stress.mjs'), stress.policy, String(STRESS_BUILDS)], {
      encoding: 'utf8',
      env: { ...CLEAN_ENV, STOCKADE_BUILDS_DIR: stress.registry },
      timeout: 600_000,
    });
    t.equal(r.status, 0, r.stderr);
    const counts = JSON.parse(r.stdout);
    t.comment(`forks retried: ${counts.retried}${r.stderr ? `\n${r.stderr}` : ''}`);
    t.match(counts, { builds: STRESS_BUILDS, succeeded: STRESS_BUILDS, wrongOutput: 0, fallbacks: 0 }, 'every build exited 0 and printed its number once');
    t.equal(counts.forked, STRESS_BUILDS, 'every init forked');
    t.same(leftovers(stress), []);
  });
}
