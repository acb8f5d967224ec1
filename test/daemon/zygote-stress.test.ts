// Many no-op builds through the daemon's zygotes, from 4 connections at once (--max-jobs 2):
// every build exits 0 and its builder ran once, forks lost are counted and logged, and nothing
// is left (process, mount, cgroup, lock, zygote). STOCKADE_ZYGOTE_BUILDS sets how many (default
// 100; CI runs 2,000, the full figure is 10,000).
import t from 'tap';
import { existsSync } from 'node:fs';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon, shSpec, type Connection } from './helpers.js';

const BUILDS = Number(process.env.STOCKADE_ZYGOTE_BUILDS ?? 100);
const CONNECTIONS = 4;

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test(`${BUILDS} no-op builds forked by the daemon's zygotes`, async (t) => {
    const d = new TestDaemon({ maxJobs: 2 });
    t.teardown(() => d.remove());
    await d.start();
    const counts = { succeeded: 0, wrongOutput: 0, forked: 0, fresh: 0, lost: 0, fallbacks: 0 };
    const outcomes: Record<string, number> = {};
    let next = 0;
    const runConnection = async (c: Connection) => {
      for (let i = next++; i < BUILDS; i = next++) {
        // Each builder prints its own number: a build run twice would print it twice.
        c.build('test', shSpec(`stress-${i}`, `echo ${i}`));
        const accepted = await c.waitFor('accepted', (e) => !c.events.some((f) => f.type === 'finished' && f.id === e.id));
        const finished = await c.waitFor('finished', (e) => e.id === accepted.id);
        outcomes[finished.outcome] = (outcomes[finished.outcome] ?? 0) + 1;
        if (finished.outcome === 'succeeded') counts.succeeded++;
        else t.comment(`build ${i}: ${finished.outcome}: ${finished.message}`);
        if (c.logOf(accepted.id) !== `${i}\n`) counts.wrongOutput++;
        const notices = c.logOf(accepted.id, 'stockade');
        for (const line of notices.split('\n').filter((l) => /forked set-up \d of \d lost/.test(l))) {
          counts.lost++;
          t.comment(`build ${i}: ${line}`);
        }
        if (notices.includes('starting a fresh Node init')) counts.fallbacks++;
        // Forget this build's events: a long run would otherwise scan them all for every event.
        c.events.splice(0, c.events.length, ...c.events.filter((e) => !('id' in e) || (e.id !== accepted.id)));
      }
    };
    const connections = await Promise.all(Array.from({ length: CONNECTIONS }, () => d.connect()));
    t.teardown(() => connections.forEach((c) => c.close()));
    await Promise.all(connections.map(runConnection));
    counts.forked = (d.log.match(/init pid \d+ \(forked by zygote pid \d+\)/g) ?? []).length;
    counts.fresh = (d.log.match(/init pid \d+ \(fresh Node\)/g) ?? []).length;
    t.comment(`counts: ${JSON.stringify(counts)}, outcomes: ${JSON.stringify(outcomes)}`);
    t.equal(counts.succeeded, BUILDS, 'every build exited 0');
    t.equal(counts.wrongOutput, 0, 'every builder printed its number, once');
    t.equal(counts.fresh, counts.fallbacks, 'a fresh-Node init only after forks lost');
    t.ok(counts.forked >= BUILDS - counts.fallbacks, 'every other build was forked by a zygote');
    t.equal(await d.stop(), 0);
    const zygotes = [...d.log.matchAll(/zygote pid (\d+) started/g)].map((m) => Number(m[1]));
    for (const pid of zygotes) t.notOk(existsSync(`/proc/${pid}`), `zygote ${pid} is gone`);
    t.same(d.leftovers(), [], 'no process, mount, cgroup or lock left');
  });
}
