// Builds through a real daemon: streamed logs and statuses, access control by peer uid,
// the job queue, cancel by id, and a client disconnect.
import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_LINE_BYTES } from '../../src/daemon/protocol.js';
import { IS_ROOT, NOT_ROOT_REASON, OTHER_UID, TestDaemon, shSpec, toolArgs } from './helpers.js';

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a build streams its log and the client exits with its status', async (t) => {
    const d = new TestDaemon();
    t.teardown(() => d.remove());
    await d.start();
    const r = await d.client(['--policy', 'test', ...toolArgs(), '--', '/bin/sh', '-c', 'echo out; echo err >&2; id -u; exit 3']);
    t.equal(r.status, 3, r.stderr);
    const [out, uid] = r.stdout.split('\n');
    t.equal(out, 'out');
    t.ok(Number(uid) >= d.sb.firstUid && Number(uid) < d.sb.firstUid + d.sb.count, `ran as pool uid ${uid}`);
    t.match(r.stderr, /build [0-9a-f]{16} accepted \(policy test\)/);
    t.match(r.stderr, 'err\n');

    const c = await d.connect();
    t.teardown(() => c.close());
    c.build('test', shSpec('proto', 'echo one; sleep 0.2; echo two'));
    const accepted = await c.waitFor('accepted');
    const finished = await c.waitFor('finished');
    t.equal(finished.id, accepted.id);
    t.equal(finished.outcome, 'succeeded');
    t.equal(finished.exit_code, 0);
    t.equal(finished.status, 0);
    t.ok(finished.duration_ms > 0);
    t.equal(c.logOf(accepted.id), 'one\ntwo\n');
    t.same(c.events.map((e) => e.type).filter((type) => type !== 'log'), ['accepted', 'started', 'finished']);
    const logs = c.events.filter((e) => e.type === 'log');
    t.ok(logs.every((e) => e.type === 'log' && !Number.isNaN(Date.parse(e.time))), 'every log event has a timestamp');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('the finished event says what the output hand-over did', async (t) => {
    const d = new TestDaemon();
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    t.teardown(() => c.close());
    const out = join(d.sb.dir, 'out');
    c.build('test', { ...shSpec('outputs', `mkdir ${out}; echo data > ${out}/file; chmod 4755 ${out}/file; ln -s file ${out}/link`), outputs: [out] });
    const finished = await c.waitFor('finished');
    t.equal(finished.outcome, 'succeeded', finished.message ?? '');
    t.same(finished.hand_over, { outputs: [{ path: out, files: 1, directories: 1, symlinks: 1, bytes: 5 }], stripped: 1, xattrs_dropped: 0 });
    t.equal(statSync(join(out, 'file')).mode & 0o7777, 0o555, 'installed without its setuid bit');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('access control: refusals get an error event and never a build', async (t) => {
    const d = new TestDaemon();
    t.teardown(() => d.remove());
    await d.start();
    const denied = await d.client(['--policy', 'only-root', ...toolArgs(), '--', '/bin/sh', '-c', 'echo ran'], OTHER_UID);
    t.equal(denied.status, 1);
    t.equal(denied.stdout, '');
    t.match(denied.stderr, `denied: user ${OTHER_UID} (uid ${OTHER_UID}) may not use policy 'only-root'`);

    const env = await d.client(['--policy', 'test', ...toolArgs(), '--env', 'LD_PRELOAD=/x.so', '--', '/bin/sh', '-c', 'echo ran'], OTHER_UID);
    t.equal(env.status, 1);
    t.equal(env.stdout, '');
    t.match(env.stderr, /refused-spec: refused: environment variable LD_PRELOAD is not allowed for you \(daemon config .*daemon\.yaml:\d+:\d+: PATH, MARK\)/);

    const unknown = await d.client(['--policy', 'nope', ...toolArgs(), '--', '/bin/sh', '-c', 'echo ran'], OTHER_UID);
    t.equal(unknown.status, 1);
    t.match(unknown.stderr, "unknown-policy: no policy 'nope' is served");
    t.notMatch(d.log, /build [0-9a-f]{16}: /, 'the daemon started no build');

    const allowed = await d.client(['--policy', 'test', ...toolArgs(), '--', '/bin/sh', '-c', 'echo ran'], OTHER_UID);
    t.equal(allowed.status, 0, allowed.stderr);
    t.equal(allowed.stdout, 'ran\n', 'the same user may use the policy granted to everyone');
    const root = await d.client(['--policy', 'only-root', ...toolArgs(), '--', '/bin/sh', '-c', 'echo root ran']);
    t.equal(root.status, 0, root.stderr);
    t.equal(root.stdout, 'root ran\n');

    const c = await d.connect();
    t.teardown(() => c.close());
    c.send({ version: 1, type: 'build', policy: 'test', spec: { name: 'x', builder: 'sh' } });
    const bad = await c.waitFor('error');
    t.equal(bad.code, 'bad-request');
    t.match(bad.message, 'spec.builder');
    c.send({ version: 2, type: 'cancel', id: '0000000000000000' });
    t.match((await c.waitFor('error', (e) => e.message.includes('version'))).message, 'protocol version 2 is not supported');
    const flood = await d.connect();
    t.teardown(() => flood.close());
    flood.socket.write('x'.repeat(MAX_LINE_BYTES + 1));
    t.match((await flood.waitFor('error')).message, `request longer than ${MAX_LINE_BYTES} bytes`, 'a request without end is cut off');
    for (let waited = 0; !flood.closed && waited < 5000; waited += 50) await sleep(50);
    t.ok(flood.closed, 'and its connection closed');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('with --max-jobs 1 a second build waits at position 1, then both finish with their own logs', async (t) => {
    const d = new TestDaemon({ maxJobs: 1 });
    t.teardown(() => d.remove());
    await d.start();
    const a = await d.connect();
    const b = await d.connect();
    t.teardown(() => (a.close(), b.close()));
    a.build('test', shSpec('first', 'echo first begins; sleep 1; echo first ends'));
    await a.waitFor('started');
    b.build('test', shSpec('second', 'echo second'));
    const queued = await b.waitFor('queued');
    t.equal(queued.position, 1);
    const firstDone = await a.waitFor('finished');
    const secondDone = await b.waitFor('finished');
    t.equal(firstDone.outcome, 'succeeded');
    t.equal(secondDone.outcome, 'succeeded');
    t.equal(a.logOf(firstDone.id), 'first begins\nfirst ends\n');
    t.equal(b.logOf(secondDone.id), 'second\n');
    const secondStarted = b.events.findIndex((e) => e.type === 'started');
    t.ok(secondStarted > b.events.findIndex((e) => e.type === 'queued'), 'the second started after being queued');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('cancel by id: only the same uid or root may; the build ends cancelled and leaves nothing', async (t) => {
    const d = new TestDaemon();
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    t.teardown(() => c.close());
    c.build('test', shSpec('long', 'echo running; sleep 100 & sleep 100'));
    const { id } = await c.waitFor('accepted');
    await c.waitFor('log', (e) => e.text.includes('running'));
    const stranger = await d.client(['--cancel', id], OTHER_UID);
    t.equal(stranger.status, 1);
    t.match(stranger.stderr, `unknown-build: no build ${id} of yours`);
    t.notOk(c.events.some((e) => e.type === 'finished'), 'another user cannot cancel it');
    const canceller = await d.client(['--cancel', id]);
    t.equal(canceller.status, 143, 'the canceller hears the end too');
    const finished = await c.waitFor('finished');
    t.equal(finished.outcome, 'cancelled');
    t.equal(finished.exit_code, 143);
    t.same(d.leftovers(), []);

    // A queued build is withdrawn before it starts.
    c.build('test', shSpec('blocker', 'sleep 100'));
    const blocker = await c.waitFor('accepted', (e) => e.id !== id);
    c.build('test', shSpec('waiting', 'echo never'));
    const waiting = await c.waitFor('queued');
    c.send({ version: 1, type: 'cancel', id: waiting.id });
    const withdrawn = await c.waitFor('finished', (e) => e.id === waiting.id);
    t.equal(withdrawn.outcome, 'cancelled');
    t.equal(c.logOf(waiting.id), '', 'the withdrawn build never ran');
    c.send({ version: 1, type: 'cancel', id: blocker.id });
    await c.waitFor('finished', (e) => e.id === blocker.id);
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('a client that disconnects cancels its build', async (t) => {
    const d = new TestDaemon();
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    c.build('test', shSpec('orphan', 'echo running; sleep 100'));
    const { id } = await c.waitFor('accepted');
    await c.waitFor('log', (e) => e.text.includes('running'));
    c.close();
    await d.waitForLog(new RegExp(`build ${id}: client disconnected, cancelling`));
    await d.waitForLog(new RegExp(`build ${id}: cancelled \\(exit 143`));
    t.same(d.leftovers(), []);
    t.equal(await d.stop(), 0);
  });
}
