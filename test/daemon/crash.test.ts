// The daemon killed -9 with builds queued, or in hand-over (running: lifecycle.test.ts): the next
// daemon leaves no process, cgroup, lock, build dir, staging dir or record. Queued and running
// builds claim their outputs against every other build, the daemon's and `stockade run`'s.
import t from 'tap';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon, lockRecord, shSpec } from './helpers.js';
import { run } from '../runtime/helpers.js';

function records(d: TestDaemon): string[] {
  return readdirSync(d.sb.registry).filter((n) => n.endsWith('.rec'));
}

function pool(d: TestDaemon): number[] {
  return Array.from({ length: d.sb.count }, (_, i) => d.sb.firstUid + i);
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('outputs of queued and running builds are claimed: an overlapping build is refused, naming both, by the daemon and by stockade run', async (t) => {
    const d = new TestDaemon({ maxJobs: 1, grace: 0 });
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    t.teardown(() => c.close());
    // One level down: an output right under /tmp would be refused by the plan (its directory is the sandbox's /tmp).
    const store = join(d.sb.dir, 'store');
    const running = join(store, 'running');
    const queued = join(store, 'queued');
    c.build('test', { ...shSpec('first', 'echo started; sleep 100'), outputs: [running] });
    const first = await c.waitFor('accepted');
    await c.waitFor('log', (e) => e.text.includes('started'));
    c.build('test', { ...shSpec('second', 'echo second'), outputs: [queued] });
    const second = await c.waitFor('queued');

    c.build('test', { ...shSpec('under', 'echo never'), outputs: [join(running, 'lib')] });
    const under = await c.waitFor('error', (e) => e.message.includes('/lib'));
    t.equal(under.code, 'refused-spec');
    t.equal(under.message, `output ${running}/lib lies under output ${running} of build first (${first.id}, pid ${d.child!.pid}), which is queued or running: concurrent builds may not share outputs`);
    c.build('test', { ...shSpec('prefix', 'echo never'), outputs: [store] });
    // Both builds' outputs lie under it: either is named.
    const prefix = (await c.waitFor('error', (e) => e.message.includes('prefix'))).message;
    t.ok([`${running} of build first`, `${queued} of build second`].some((theirs) => prefix.startsWith(`output ${store} is a prefix of output ${theirs} (`)), prefix);

    const cli = run({ ...d.sb, policy: d.policyFile }, 'echo never', ['--output', join(queued, 'bin')]);
    t.equal(cli.status, 1, 'refused: exit 1');
    t.match(cli.stderr, `output ${queued}/bin lies under output ${queued} of build second (${second.id}, pid ${d.child!.pid}), which is queued or running`);
    t.equal(records(d).length, 2, 'one record per queued or running build');

    t.equal(await d.stop(), 0);
    t.same(records(d), [], 'cancelled and unstarted builds release their records');
    t.same(d.leftovers(), []);
  });

  t.test('kill -9 of the daemon with a build queued: the next daemon leaves nothing, and the claim is gone', async (t) => {
    const d = new TestDaemon({ maxJobs: 1, extra: 'limits: { cgroup: { pids: 64 } }\n' });
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    const out = join(d.sb.dir, 'out');
    c.build('test', shSpec('running', 'echo started; sleep 100'));
    await c.waitFor('log', (e) => e.text.includes('started'));
    c.build('test', { ...shSpec('waiting', 'echo never'), outputs: [out] });
    await c.waitFor('queued');
    const crashed = d.child!.pid!;
    await d.kill9();
    c.close();
    t.equal(records(d).length, 2, 'the queued and the running build have records');

    await d.start();
    t.match(d.log, /recovery: \d+ leftovers of dead builds removed/);
    t.same(d.leftovers([crashed, d.child!.pid!]), [], 'nothing remains');
    t.same(records(d), [], 'no record remains');
    t.same(pool(d).filter((uid) => lockRecord(d, uid) !== ''), [], 'no lock names a holder');
    const again = await d.connect();
    t.teardown(() => again.close());
    again.build('test', { ...shSpec('after', `mkdir ${out}; echo built > ${out}/f`), outputs: [out] });
    const done = await again.waitFor('finished');
    t.equal(done.outcome, 'succeeded', "the queued build's output is free again");
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('kill -9 of the daemon during a hand-over: the next daemon leaves nothing', async (t) => {
    const d = new TestDaemon({ extra: 'limits: { cgroup: { pids: 64 } }\n' });
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    const parent = join(d.sb.dir, 'store');
    mkdirSync(parent, { mode: 0o755 });
    const out = join(parent, 'out');
    // 300 MB of real data: the copy lasts long enough to be caught in the act.
    c.build('test', { ...shSpec('big', `mkdir ${out}; yes | head -c 314572800 > ${out}/big`), outputs: [out] });
    await c.waitFor('started');
    while (!readdirSync(parent).some((n) => n.startsWith('.stockade-handover-'))) {
      const finished = c.events.find((e) => e.type === 'finished');
      if (finished) throw new Error(`the build ended before its hand-over was caught: ${JSON.stringify(finished)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const crashed = d.child!.pid!;
    await d.kill9();
    c.close();
    t.ok(readdirSync(parent).some((n) => n.startsWith('.stockade-handover-')), 'the hand-over staging was left');

    await d.start();
    t.same(d.leftovers([crashed, d.child!.pid!]), [], 'no process, cgroup, mount or build dir remains');
    t.same(records(d), [], 'no record remains');
    t.same(pool(d).filter((uid) => lockRecord(d, uid) !== ''), [], 'no lock names a holder');
    t.same(readdirSync(parent), [], 'no staging dir or output remains');
    t.equal(await d.stop(), 0);
  });
}
