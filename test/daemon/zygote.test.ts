// The daemon's zygotes: every build's init is forked by a zygote process (one per job slot), not
// by the daemon; a fork that fails is retried and, after repeated failures, the build's init is a
// fresh Node, the build still correct; zygotes end with the daemon.
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon, shSpec, toolArgs, type Connection, type DaemonOptions } from './helpers.js';

const STARTED = /zygote pid (\d+) started/g;
const zygotePids = (log: string) => [...log.matchAll(STARTED)].map((m) => Number(m[1]));
const status = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8');
/** A zombie has ended: whoever inherited it (not us) may not have reaped it yet. */
const running = (pid: number) => {
  try {
    return !/\nState:\s+Z/.test(status(pid));
  } catch {
    return false;
  }
};

/** The test policy has no seccomp section: the runtime's two filters (vsock closed; MADV_DONTFORK a no-op), forked or not. */
const RUNTIME_FILTERS = 'Seccomp_filters:\t2';
/**
 * What a builder inherits besides the Plan: its pid, its signal mask and ignored signals (read
 * first, with builtins only: sh blocks every signal while it forks), its seccomp filters, its
 * open fds, its environment.
 */
const HIDDEN_STATE = 'echo $$; while read -r line; do case $line in SigBlk:*|SigIgn:*|Seccomp_filters:*) echo "$line";; esac; done < /proc/$$/status; ls /proc/$$/fd; env | sort';

/** A daemon started for test `t`, removed at its end. */
async function startDaemon(t: Test, options: DaemonOptions): Promise<TestDaemon> {
  const d = new TestDaemon(options);
  t.teardown(() => d.remove());
  await d.start();
  return d;
}

/** A connection to `d`, closed at the end of test `t`. */
async function connect(t: Test, d: TestDaemon): Promise<Connection> {
  const c = await d.connect();
  t.teardown(() => c.close());
  return c;
}

async function build(c: Connection, name: string, script: string) {
  c.build('test', shSpec(name, script));
  const accepted = await c.waitFor('accepted', (e) => !c.events.some((f) => f.type === 'finished' && f.id === e.id));
  const finished = await c.waitFor('finished', (e) => e.id === accepted.id);
  return { id: accepted.id, finished, stdout: c.logOf(accepted.id), notices: c.logOf(accepted.id, 'stockade') };
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test("builds' inits are forked by the daemon's zygotes, one per job slot; the builder inherits nothing of them", async (t) => {
    const d = await startDaemon(t, { maxJobs: 2 });
    const zygotes = zygotePids(d.log);
    t.equal(zygotes.length, 2, 'one zygote per job slot');
    t.match(d.log, 'zygote: 2 of 2 ready');
    for (const pid of zygotes) {
      t.match(status(pid), new RegExp(`\\nPPid:\\s+${d.child!.pid}\\n`), `zygote ${pid} is the daemon's child`);
      t.ok(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--single-threaded'), `zygote ${pid} runs --single-threaded`);
    }
    const c = await connect(t, d);
    const inits = new Set<number>();
    for (const name of ['first', 'second', 'third']) {
      const from = d.log.length;
      const r = await build(c, name, HIDDEN_STATE);
      t.equal(r.finished.outcome, 'succeeded', r.finished.message ?? '');
      const line = new RegExp(`build ${r.id}: running as uid \\d+, init pid (\\d+) \\(forked by zygote pid (\\d+)\\)`).exec(d.log.slice(from));
      t.ok(line, `build ${name}'s init was forked by a zygote`);
      t.ok(zygotes.includes(Number(line?.[2])), 'by one the daemon started');
      inits.add(Number(line?.[1]));
      t.equal(r.stdout, [
        '1', 'SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000', RUNTIME_FILTERS, '0', '1', '2',
        ...expectedEnv(name),
      ].join('\n') + '\n', "the builder is PID 1, holds fds 0-2 only, no blocked or ignored signal, the runtime's filters only, and the environment of its Plan");
    }
    t.equal(inits.size, 3, 'every build had an init of its own');
    t.equal(await d.stop(), 0);
    t.match(d.log, 'zygote: 2 ended');
    for (const pid of zygotes) t.notOk(existsSync(`/proc/${pid}`), `zygote ${pid} is gone after shutdown`);
    t.same(d.leftovers(), []);
  });

  t.test('zygotes of a daemon killed with SIGKILL end with it', async (t) => {
    const d = await startDaemon(t, { maxJobs: 2 });
    const zygotes = zygotePids(d.log);
    t.equal(zygotes.length, 2);
    await d.kill9();
    const deadline = Date.now() + 30_000;
    while (zygotes.some(running) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.same(zygotes.filter(running), [], 'no zygote outlives its daemon');
  });

  t.test('a zygote that died is replaced, logged, and the next build is forked by the new one', async (t) => {
    const d = await startDaemon(t, { maxJobs: 1 });
    const [first] = zygotePids(d.log);
    process.kill(first, 'SIGKILL');
    await d.waitForLog(new RegExp(`zygote pid ${first}: ended \\(SIGKILL\\)`));
    const c = await connect(t, d);
    const r = await build(c, 'after', 'echo ok');
    t.equal(r.finished.outcome, 'succeeded', r.finished.message ?? '');
    t.equal(r.stdout, 'ok\n');
    t.match(d.log, `zygote pid ${first} had ended; starting a fresh one`);
    const fresh = zygotePids(d.log).filter((pid) => pid !== first);
    t.equal(fresh.length, 1);
    t.match(d.log, new RegExp(`build ${r.id}: running as uid \\d+, init pid \\d+ \\(forked by zygote pid ${fresh[0]}\\)`));
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('a forked child that dies before exec is retried on a fresh fork; the build runs once', async (t) => {
    const d = await startDaemon(t, { maxJobs: 1, env: { STOCKADE_TEST_FORK_FAULTS: 'crash:2' } });
    const c = await connect(t, d);
    const r = await build(c, 'retried', 'echo ran');
    t.equal(r.finished.outcome, 'succeeded', r.finished.message ?? '');
    t.equal(r.stdout, 'ran\n', 'the builder ran once');
    // The two faults injected, then a fork that runs it.
    t.match(r.notices, /init: forked set-up 1 of 3 lost \(pid \d+: it ended \(SIGSEGV\) before it opened its pipes\); retrying on a fresh fork/);
    t.match(r.notices, /init: forked set-up 2 of 3 lost \(pid \d+: it ended \(SIGSEGV\) before it opened its pipes\); retrying on a fresh fork/);
    t.notMatch(r.notices, /lost \(pid \d+: [^)]*\); starting a fresh Node init/, 'no fallback: a later fork ran it');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('after 3 lost forks the build falls back to a fresh Node init, logged, and is still correct; the next build is forked', async (t) => {
    const d = await startDaemon(t, { maxJobs: 1, env: { STOCKADE_TEST_FORK_FAULTS: 'crash:3' } });
    const c = await connect(t, d);
    const fallback = await build(c, 'fallback', HIDDEN_STATE);
    t.equal(fallback.finished.outcome, 'succeeded', fallback.finished.message ?? '');
    t.match(fallback.notices, /forked set-up 3 of 3 lost .*; starting a fresh Node init/);
    t.match(d.log, new RegExp(`build ${fallback.id}: running as uid \\d+, init pid \\d+ \\(fresh Node\\)`));
    const forked = await build(c, 'forked', HIDDEN_STATE);
    t.equal(forked.finished.outcome, 'succeeded', forked.finished.message ?? '');
    t.notMatch(forked.notices, /starting a fresh Node init/);
    t.match(d.log, new RegExp(`build ${forked.id}: running as uid \\d+, init pid \\d+ \\(forked by zygote pid \\d+\\)`));
    const expected = (name: string) => ['1', 'SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000', RUNTIME_FILTERS, '0', '1', '2', ...expectedEnv(name)].join('\n') + '\n';
    t.equal(fallback.stdout, expected('fallback'), "the fallback build: PID 1, no blocked or ignored signal, the runtime's filters only, fds 0-2, its Plan's environment");
    t.equal(forked.stdout, expected('forked'), 'the forked build sees the same');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('--warm 0: every init is a fresh Node, no zygote started', async (t) => {
    const d = await startDaemon(t, { args: ['--warm', '0'] });
    t.same(zygotePids(d.log), []);
    const r = await d.client(['--policy', 'test', ...toolArgs(), '--', '/bin/true']);
    t.equal(r.status, 0, r.stderr);
    t.match(d.log, /running as uid \d+, init pid \d+ \(fresh Node\)/);
    t.equal(await d.stop(), 0);
  });
}

/** `env | sort` in build NAME of shSpec under the test policy: guix-default's variables, the spec's PATH, the build dir's. */
function expectedEnv(name: string): string[] {
  const dir = `/tmp/guix-build-${name}.drv-0`;
  return ['HOME=/homeless-shelter', 'NIX_BUILD_CORES=0', `NIX_BUILD_TOP=${dir}`, 'NIX_STORE=/gnu/store', 'PATH=/usr/bin:/bin', `PWD=${dir}`, `TEMP=${dir}`, `TEMPDIR=${dir}`, `TMP=${dir}`, `TMPDIR=${dir}`];
}
