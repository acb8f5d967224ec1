// A failure injected into each of the daemon's event paths ends at worst the one request or
// build it concerns: it is logged (with the build's id), the client hears of it, and the same
// daemon goes on serving. The daemon runs in this process so that its methods can be made to
// fail; no build runs for real. unhandledRejection and a failing shutdown are checked on the
// command's own functions.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadDaemonConfig } from '../../src/daemon/config.js';
import { Daemon } from '../../src/daemon/server.js';
import { serveUntilStopped } from '../../src/cli/daemon.js';
import { EXIT } from '../../src/runtime/supervisor.js';
import { ROOT } from '../runtime/helpers.js';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon, shSpec, type Connection } from './helpers.js';

type Patchable = Record<string, unknown>;

t.test('unhandledRejection is logged and the daemon process goes on', async (t) => {
  const script = [
    `import { containUnhandled } from ${JSON.stringify(join(ROOT, 'dist/cli/daemon.js'))};`,
    'containUnhandled((m) => process.stderr.write(m.split("\\n")[0] + "\\n"));',
    'Promise.reject(new Error("injected rejection"));',
    'setTimeout(() => process.stdout.write("still serving\\n"), 50);',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'still serving\n');
  t.equal(r.stderr, 'internal error (unhandled rejection), still serving: Error: injected rejection\n');
});

t.test('a shutdown that fails is logged and the command exits 1', async (t) => {
  const logged: string[] = [];
  const reloads: number[] = [];
  const handlers = () => ['SIGHUP', 'SIGTERM', 'SIGINT'].map((signal) => process.listenerCount(signal));
  const before = handlers();
  const served = serveUntilStopped({ reload: () => reloads.push(1), shutdown: () => Promise.reject(new Error('injected shutdown failure')) }, (m) => logged.push(m));
  process.emit('SIGHUP', 'SIGHUP');
  process.emit('SIGTERM', 'SIGTERM');
  t.equal(await served, 1);
  t.same(reloads, [1]);
  t.equal(logged[0], 'SIGTERM received');
  t.match(logged[1], /^shutdown failed: Error: injected shutdown failure/);
  t.same(handlers(), before, 'its signal handlers are gone');
});

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
} else {
  t.test('failures injected into the daemon\'s paths', async (t) => {
    const d = new TestDaemon();
    t.teardown(() => d.remove());
    const config = { ...loadDaemonConfig(d.configFile), socket: d.socket, policies: d.policies, stateDir: d.stateDir, zygotes: 0 };
    const logged: string[] = [];
    const daemon = new Daemon(config, (m) => logged.push(m));
    const patch = daemon as unknown as Patchable;
    await daemon.start();
    t.teardown(() => daemon.shutdown());
    const spec = shSpec('contain', 'true');
    const open: Connection[] = [];
    t.teardown(() => open.forEach((c) => c.close()));
    const connect = async () => {
      const c = await d.connect();
      open.push(c);
      return c;
    };
    /** The daemon answers: a cancel of a build nobody has is refused as unknown. */
    const serves = async (c: Connection) => {
      c.send({ version: 1, type: 'cancel', id: '0123456789abcdef' });
      return (await c.waitFor('error', (e) => e.code === 'unknown-build', 10_000)).code;
    };

    t.test('a deeply nested request', async (t) => {
      const c = await connect();
      c.socket.write(`{"version":${'['.repeat(200_000)}${']'.repeat(200_000)}}\n`);
      const error = await c.waitFor('error');
      t.same([error.code, error.message], ['bad-request', 'request nested deeper than 64 levels']);
      t.equal(await serves(c), 'unknown-build', 'the same connection is served on');
    });

    t.test('a request handler that throws', async (t) => {
      const submit = patch.submit;
      patch.submit = () => {
        throw new Error('injected submit failure');
      };
      t.teardown(() => (patch.submit = submit));
      const c = await connect();
      c.build('test', spec);
      const error = await c.waitFor('error');
      t.same([error.code, error.message], ['bad-request', 'the daemon failed to handle this build request (logged)']);
      t.ok(logged.some((m) => /^build request of root \(uid 0, pid \d+\): Error: injected submit failure/.test(m)), 'logged');
      t.equal(await serves(c), 'unknown-build');
    });

    t.test('the socket data handler throwing', async (t) => {
      const received = patch.received;
      patch.received = () => {
        throw new Error('injected data handler failure');
      };
      const c = await connect();
      c.send({ version: 1, type: 'cancel', id: '0123456789abcdef' });
      const error = await c.waitFor('error');
      patch.received = received;
      t.same([error.code, error.message], ['bad-request', 'the daemon could not handle what this connection sent (logged)']);
      if (!c.closed) await new Promise((resolve) => c.socket.once('close', resolve));
      t.ok(c.closed, 'that connection is closed');
      t.ok(logged.some((m) => /^connection of root \(uid 0, pid \d+\): Error: injected data handler failure/.test(m)), 'logged');
      t.equal(await serves(await connect()), 'unknown-build', 'others are served');
    });

    t.test('a build whose run rejects', async (t) => {
      const run = patch.run;
      patch.run = () => Promise.reject(new Error('injected run failure'));
      t.teardown(() => (patch.run = run));
      const c = await connect();
      c.build('test', spec);
      const accepted = await c.waitFor('accepted');
      const finished = await c.waitFor('finished');
      t.same([finished.id, finished.outcome, finished.exit_code, finished.message], [accepted.id, 'setup-failed', EXIT.setupFailed, 'internal error in the daemon: injected run failure']);
      t.ok(logged.some((m) => m.startsWith(`build ${accepted.id}: internal error: Error: injected run failure`)), 'logged with its id');
      c.build('test', spec);
      const second = await c.waitFor('finished', (e) => e.id !== accepted.id);
      t.equal(second.outcome, 'setup-failed', 'the slot was freed: the next build started');
    });

    t.test('an event that fails its schema', async (t) => {
      const run = patch.run;
      patch.run = (build: { id: string }) => {
        (patch.emit as (b: unknown, e: unknown) => void).call(daemon, build, { type: 'queued', id: build.id, position: 0 });
        (patch.finish as (b: unknown, r: unknown) => void).call(daemon, build, { outcome: 'succeeded', exitCode: 0, status: 0, termSignal: null, durationMs: 1 });
        return Promise.resolve();
      };
      t.teardown(() => (patch.run = run));
      const c = await connect();
      c.build('test', spec);
      const finished = await c.waitFor('finished');
      t.equal(finished.outcome, 'succeeded', 'the build went on to its end');
      t.notOk(c.events.some((e) => e.type === 'queued' && e.position === 0), 'the invalid event was not sent');
      t.ok(logged.some((m) => m.startsWith(`build ${finished.id}: queued event not sent: daemon bug: invalid queued event: position: must be >= 1`)), 'logged with its id');
    });

    t.test('the daemon served throughout', async (t) => {
      t.equal(await serves(await connect()), 'unknown-build');
    });
  });
}
