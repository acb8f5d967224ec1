// A client that does not read: the daemon stops reading its build's output, so the builder
// blocks on write and the daemon holds at most about CLIENT_BUFFER_BYTES for it; timeouts still
// apply (here max_silent ends the blocked build); what the build wrote is all in its log file
// and all reaches the client once it reads.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TOOL_INPUTS } from '../runtime/helpers.js';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon } from './helpers.js';

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a client that reads nothing blocks its build, which max_silent then ends', async (t) => {
    const d = new TestDaemon({ extra: 'timeouts: { max_silent: 2 }\n' });
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    t.teardown(() => c.close());
    c.socket.pause();
    const flood = 1 << 30;
    c.build('test', { name: 'flood', builder: '/bin/sh', args: ['-c', `yes xxxxxxxxxxxxxxx 2>/dev/null | head -c ${flood}`], inputs: TOOL_INPUTS, env: { PATH: '/usr/bin:/bin' } });
    const ended = /build ([0-9a-f]{16}): silent-timeout/;
    await d.waitForLog(ended, 0, 20_000);
    const id = ended.exec(d.log)![1];
    await sleep(500);
    c.socket.resume();
    const finished = await c.waitFor('finished');
    t.same([finished.id, finished.outcome], [id, 'silent-timeout'], 'blocked on write, the build fell silent');
    const file = readdirSync(join(d.stateDir, 'logs')).find((name) => name.endsWith(`-${id}.log`))!;
    const logged = readFileSync(join(d.stateDir, 'logs', file), 'utf8');
    const received = c.logOf(id);
    t.ok(received.length < 16 << 20, `the build wrote ${received.length} of its ${flood} bytes before it blocked`);
    t.ok(received.length > 0);
    // The file has Stockade's notices (of set-up, say) prefixed, where the stream has them apart.
    const stream = c.events.flatMap((e) => (e.type === 'log' && e.id === id ? [e.stream === 'stockade' ? `stockade: ${e.text}` : e.text] : [])).join('');
    t.equal(logged, stream, 'the client received what the log file holds, all of it');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });
}
