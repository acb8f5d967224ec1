// Load: many no-op builds from concurrent clients through one daemon with a pool of 4 build
// users. None may be lost, no build user may serve two builds at once, and the daemon's memory
// must come back near where it started. Local socket only; bounded in count and time.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { TOOL_INPUTS } from '../runtime/helpers.js';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon, type Connection } from './helpers.js';

/**
 * 50 by default, so a developer's `npm test` stays short; the 500 with
 * STOCKADE_LOAD_BUILDS=500 (.ci/run sets it; about 2.5 minutes alone).
 */
const BUILDS = Number(process.env.STOCKADE_LOAD_BUILDS ?? 50);
const CLIENTS = 8;
const POOL = 4;
/**
 * V8 grows its heap in steps and keeps freed pages for a while, and the first builds JIT-compile
 * the daemon's build path: RSS does not return to the byte. 50 MiB is still less than what a
 * leak of 100 KiB per build (a kept build record, plan, or buffered log) would add over 500 builds.
 */
const RSS_MARGIN_KIB = 50 * 1024;
const SETTLE_MS = 5000;

const rssKiB = (pid: number) => Number(/\nVmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test(`${BUILDS} no-op builds from ${CLIENTS} clients, ${POOL} build users`, { timeout: 540_000 }, async (t) => {
    const d = new TestDaemon({ maxJobs: POOL });
    t.teardown(() => d.remove());
    await d.start();
    const pid = d.child!.pid!;
    await sleep(SETTLE_MS);
    const baseline = rssKiB(pid);

    const clients: Connection[] = [];
    t.teardown(() => clients.forEach((c) => c.close()));
    for (let i = 0; i < CLIENTS; i++) clients.push(await d.connect());
    let next = 0;
    const started = Date.now();
    // Each client submits its next build once its previous one finished: CLIENTS builds are always in flight.
    await Promise.all(clients.map(async (c) => {
      for (let n = next++; n < BUILDS; n = next++) {
        const seen = c.events.length;
        c.build('test', { name: `noop-${n}`, builder: '/bin/true', inputs: TOOL_INPUTS });
        await c.waitFor('finished', (e) => c.events.indexOf(e) >= seen, 300_000);
      }
    }));

    t.comment(`${BUILDS} builds in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const finished = clients.flatMap((c) => c.events.filter((e) => e.type === 'finished'));
    t.equal(finished.length, BUILDS, 'every build finished');
    t.equal(new Set(finished.map((e) => e.id)).size, BUILDS, 'each with its own id');
    const failed = finished.filter((e) => e.type === 'finished' && e.outcome !== 'succeeded');
    t.same(failed, [], 'all succeeded');
    t.same(clients.flatMap((c) => c.events.filter((e) => e.type === 'error')), [], 'no errors');

    // The daemon logs a build's start (after it took its user; again for each fork retried) and
    // its end (after it gave the user back) in one stream, so the log's order is the order things
    // happened in.
    const holder = new Map<number, string>();
    const overlaps: string[] = [];
    const starts = new Set<string>();
    for (const line of d.log.split('\n')) {
      const start = /build ([0-9a-f]+): running as uid (\d+),/.exec(line);
      const end = /build ([0-9a-f]+): \w[\w-]* \(exit \d+, uid (\d+),/.exec(line);
      if (start) {
        starts.add(start[1]);
        const uid = Number(start[2]);
        if (holder.has(uid) && holder.get(uid) !== start[1]) overlaps.push(`uid ${uid}: build ${start[1]} started while ${holder.get(uid)} was running`);
        holder.set(uid, start[1]);
      } else if (end) {
        const uid = Number(end[2]);
        if (holder.get(uid) !== end[1]) overlaps.push(`uid ${uid}: build ${end[1]} ended but ${holder.get(uid) ?? 'no build'} held it`);
        holder.delete(uid);
      }
    }
    t.equal(starts.size, BUILDS, 'the log has every start');
    t.same(overlaps, [], 'no two running builds shared a uid');
    const uids = new Set(finished.map((e) => (e as { uid?: number }).uid));
    t.ok(uids.size <= POOL && [...uids].every((u) => u !== undefined && u >= d.sb.firstUid && u < d.sb.firstUid + POOL), `uids from the pool: ${[...uids].join(' ')}`);

    await sleep(SETTLE_MS);
    const after = rssKiB(pid);
    t.ok(after <= baseline + RSS_MARGIN_KIB, `daemon RSS ${baseline} KiB at start, ${after} KiB after ${BUILDS} builds (margin ${RSS_MARGIN_KIB} KiB)`);
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });
}
