// The daemon's defences that need no root: request parsing bounds, and the scheduler's
// containment of failing jobs, per-user round-robin and bounded position events.
import t from 'tap';
import { parseRequest, ProtocolError } from '../../src/daemon/protocol.js';
import { POSITION_UPDATES, Scheduler, type Job } from '../../src/daemon/scheduler.js';

t.test('a deeply nested request is a bad request, not a crash', async (t) => {
  const depth = 200_000;
  const line = `{"version":${'['.repeat(depth)}${']'.repeat(depth)}}`;
  t.ok(line.length < 1 << 20, 'under the line cap');
  let thrown: unknown;
  try {
    parseRequest(line);
  } catch (err) {
    thrown = err;
  }
  t.ok(thrown instanceof ProtocolError, 'a protocol error, which the daemon answers with bad-request');
  t.match((thrown as Error).message, /^request nested deeper than 64 levels$/);
  const inString = JSON.stringify({ version: 1, type: 'cancel', id: '['.repeat(1000) });
  t.throws(() => parseRequest(inString), { message: /id: must match pattern/ }, 'brackets inside a string are not nesting');
  const deepSpec = `{"version":1,"type":"build","policy":"test","spec":{"name":"x","builder":"/bin/sh","env":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}}`;
  t.throws(() => parseRequest(deepSpec), { message: /^request nested deeper than 64 levels$/ }, 'anywhere in the request');
});

interface Probe {
  started: string[];
  positions: Map<string, number[]>;
  errors: string[];
  finish: Map<string, () => void>;
}

function probe(): Probe {
  return { started: [], positions: new Map(), errors: [], finish: new Map() };
}

function job(p: Probe, id: string, owner: number, run?: () => Promise<void>): Job {
  return {
    id, owner,
    onPosition: (position) => p.positions.set(id, [...(p.positions.get(id) ?? []), position]),
    run: run ?? (() => {
      p.started.push(id);
      return new Promise<void>((resolve) => p.finish.set(id, resolve));
    }),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

t.test('a job that throws or rejects is contained and the next one starts', async (t) => {
  const p = probe();
  const s = new Scheduler({ maxJobs: 1, onError: (j, err) => p.errors.push(`${j.id}: ${(err as Error).message}`) });
  s.submit(job(p, 'sync', 1, () => {
    throw new Error('thrown');
  }));
  s.submit(job(p, 'async', 1, () => Promise.reject(new Error('rejected'))));
  s.submit(job(p, 'ok', 1));
  await tick();
  await tick();
  t.same(p.errors, ['sync: thrown', 'async: rejected']);
  t.same(p.started, ['ok'], 'the queue went on');
  p.finish.get('ok')!();
  await s.idle();
  t.equal(s.runningCount, 0);
});

t.test('users are served round-robin, each within its running bound', async (t) => {
  const p = probe();
  const s = new Scheduler({ maxJobs: 2, maxRunningPerOwner: 1, onError: () => {} });
  for (let i = 0; i < 5; i++) s.submit(job(p, `a${i}`, 1000));
  s.submit(job(p, 'b0', 2000));
  s.submit(job(p, 'b1', 2000));
  s.submit(job(p, 'c0', 3000));
  await tick();
  t.same(p.started, ['a0', 'b0'], 'one build of each user runs; a second of user 1000 waits though a slot is free');
  p.finish.get('a0')!();
  await tick();
  t.same(p.started, ['a0', 'b0', 'c0'], 'the user who waited longest is next');
  p.finish.get('b0')!();
  await tick();
  p.finish.get('c0')!();
  await tick();
  t.same(p.started, ['a0', 'b0', 'c0', 'a1', 'b1'], 'then in turn');
  t.same(s.queuedOf(1000), 3);
  t.same(s.runningOf(1000), 1);
  for (const id of ['a1', 'b1']) p.finish.get(id)!();
  await tick();
  for (const id of ['a2', 'a3', 'a4']) {
    p.finish.get(id)!();
    await tick();
  }
  await s.idle();
  t.same(p.started, ['a0', 'b0', 'c0', 'a1', 'b1', 'a2', 'a3', 'a4']);
});

t.test('a change in the queue costs position events only for the builds of the user it concerns', async (t) => {
  const p = probe();
  const s = new Scheduler({ maxJobs: 1, onError: () => {} });
  s.submit(job(p, 'first', 1));
  const users = 50;
  const each = 20;
  for (let n = 0; n < each; n++) for (let u = 0; u < users; u++) s.submit(job(p, `u${u}-${n}`, 100 + u));
  const count = () => [...p.positions.values()].reduce((sum, list) => sum + list.length, 0);
  await tick();
  const afterSubmit = count();
  t.equal(afterSubmit, users * each, 'one event per queued build on submission');
  t.same(p.positions.get('u7-3'), [4], 'its place among its user\'s builds');
  p.finish.get('first')!();
  await tick();
  t.same(p.started, ['first', 'u0-0']);
  t.equal(count() - afterSubmit, POSITION_UPDATES, 'one start: events to the next builds of that user only');
  t.same(p.positions.get('u0-1'), [2, 1]);
  t.same(p.positions.get('u0-10'), [11, 10], 'its place once among the next POSITION_UPDATES');
  t.same(p.positions.get('u0-11'), [12], 'further back: its place when queued');
  t.same(p.positions.get('u1-1'), [2], 'another user\'s build heard nothing');
  t.ok(s.withdraw('u5-0', 105));
  t.equal(count() - afterSubmit, 2 * POSITION_UPDATES);
  t.same(s.drain().length, users * each - 2);
  p.finish.get('u0-0')!();
  await s.idle();
});

t.test('1,000 builds of one user: events grow linearly, not with the square of the queue', async (t) => {
  const p = probe();
  const s = new Scheduler({ maxJobs: 1, onError: () => {} });
  const builds = 1000;
  for (let n = 0; n < builds; n++) s.submit(job(p, `b${n}`, 1));
  await tick();
  for (let n = 0; n < builds; n++) {
    p.finish.get(`b${n}`)!();
    await tick();
  }
  await s.idle();
  t.equal(p.started.length, builds);
  const events = [...p.positions.values()].reduce((sum, list) => sum + list.length, 0);
  t.ok(events <= builds * (1 + POSITION_UPDATES), `${events} position events for ${builds} builds (at most ${1 + POSITION_UPDATES} each)`);
  t.same(p.positions.get('b999')!.slice(-3), [3, 2, 1], 'the last still heard its way to the front');
});
