// The review's attacks at once, from a throwaway unprivileged system user, while other users
// build: a deeply nested request, a log flood to a client that does not read, 1,000 builds in
// one write, 300 idle connections, a request sent a byte at a time. The daemon must never exit,
// stay under 300 MiB RSS, finish every legitimate build with its status, keep the flood's whole
// log in its log file, and start a third user's build within one hostile build's time.
// Smaller than the figures by default, so that it runs in well under a minute on a
// shared machine; STOCKADE_HOSTILE_BUILDS and STOCKADE_FLOOD_BYTES (2 GiB: 2147483648) set them.
// The daemon's bounds are the real ones.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { TOOL_INPUTS } from '../runtime/helpers.js';
import { IS_ROOT, NOT_ROOT_REASON, OTHER_UID, TestDaemon, type Connection } from './helpers.js';

const BUILDS = Number(process.env.STOCKADE_HOSTILE_BUILDS ?? 50);
const FLOOD_BYTES = Number(process.env.STOCKADE_FLOOD_BYTES ?? 64 << 20);
const QUEUE_FLOOD = 1000;
const IDLE_CONNECTIONS = 300;
/** What a hostile build sleeps; with its set-up, a build slot's time, within which a third user's build must start. */
const SLOT_SECONDS = 2;
/** How long the flood's client reads nothing. */
const HOLD_MS = 6000;
const RSS_LIMIT_KIB = 300 * 1024;
const IDLE_TIMEOUT = 3;
const MAX_QUEUED = 8;
const CLIENT = fileURLToPath(new URL('./hostile-client.mjs', import.meta.url));

const rssKiB = (pid: number) => Number(/\nVmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

/** Runs the hostile client as `user` (a name, through runuser) or a bare uid (setpriv); resolves with its report. */
function client(d: TestDaemon, as: { user: string } | { uid: number }, mode: string, ...args: string[]): Promise<any> {
  const node = [process.execPath, CLIENT, mode, d.socket, ...args];
  const [cmd, ...rest] = 'user' in as ? ['/usr/sbin/runuser', '-u', as.user, '--', ...node] : ['/usr/bin/setpriv', `--reuid=${as.uid}`, `--regid=${as.uid}`, '--clear-groups', ...node];
  const report = new Promise((resolve, reject) => {
    const child = spawn(cmd, rest, { env: { PATH: '/usr/bin:/bin' }, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => {
      try {
        resolve(JSON.parse(stdout));
      } catch {
        reject(new Error(`${mode} client (exit ${status}) reported ${JSON.stringify(stdout)}: ${stderr}`));
      }
    });
  });
  // Awaited with the others; a test that failed first must not also die of this rejection.
  report.catch(() => {});
  return report;
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a hostile user cannot kill, bloat or starve the daemon', { timeout: 300_000 }, async (t) => {
    const user = `stk-h-${randomBytes(4).toString('hex')}`;
    const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user], { encoding: 'utf8' });
    t.equal(made.status, 0, `useradd ${user}: ${made.stderr}`);
    t.teardown(async () => {
      // Its clients, when the test failed before they ended: userdel refuses a user with processes.
      let removed;
      for (let tries = 0; tries < 50; tries++) {
        spawnSync('pkill', ['-KILL', '-u', user]);
        removed = spawnSync('userdel', [user], { encoding: 'utf8' });
        if (removed.status === 0) return;
        await sleep(100);
      }
      throw new Error(`userdel ${user}: ${removed!.stderr}`);
    });
    const d = new TestDaemon({
      maxJobs: 4,
      config: [
        'stockade-daemon: 1',
        'max_running_per_user: 2',
        `max_queued_per_user: ${MAX_QUEUED}`,
        'max_connections: 64',
        'max_connections_per_user: 8',
        `idle_timeout: ${IDLE_TIMEOUT}`,
        `max_log_size: ${FLOOD_BYTES + (1 << 20)}`,
        'access:',
        '  - policies: [test]',
        '    users: ["*"]',
        '    env: [PATH]',
        '',
      ].join('\n'),
    });
    t.teardown(() => d.remove());
    await d.start();
    const pid = d.child!.pid!;
    let peakKiB = rssKiB(pid);
    const sampler = setInterval(() => {
      if (d.child!.exitCode === null) peakKiB = Math.max(peakKiB, rssKiB(pid));
    }, 100);
    t.teardown(() => clearInterval(sampler));
    const env = { PATH: '/usr/bin:/bin' };
    const as = { user };

    // The flood first: it holds one of the hostile user's two running places throughout.
    const floodSpec = { name: 'flood', builder: '/bin/sh', args: ['-c', `yes xxxxxxxxxxxxxxx 2>/dev/null | head -c ${FLOOD_BYTES}`], inputs: TOOL_INPUTS, env };
    const flood = client(d, as, 'flood', JSON.stringify(floodSpec), String(HOLD_MS));
    const floodId = (await d.waitForLog(/build ([0-9a-f]{16}): flood under/)).slice(6, 22);
    const queue = client(d, as, 'queue', JSON.stringify({ name: 'slot', builder: '/bin/sleep', args: [String(SLOT_SECONDS)], inputs: TOOL_INPUTS, env }), String(QUEUE_FLOOD));
    const deep = client(d, as, 'deep');
    const slow = client(d, as, 'slow');
    await d.waitForLog(/slot under 'test'/);
    const idle = client(d, as, 'idle', String(IDLE_CONNECTIONS));

    // The legitimate load: root's clients, each submitting its next build when the last ended.
    const clients: Connection[] = [];
    t.teardown(() => clients.forEach((c) => c.close()));
    for (let i = 0; i < 8; i++) clients.push(await d.connect());
    let next = 0;
    const load = Promise.all(clients.map(async (c) => {
      for (let n = next++; n < BUILDS; n = next++) {
        const seen = c.events.length;
        c.build('test', { name: `noop-${n}`, builder: '/bin/sh', args: ['-c', `echo ${n}; exit ${n % 3}`], inputs: TOOL_INPUTS, env });
        await c.waitFor('finished', (e) => c.events.indexOf(e) >= seen, 120_000);
      }
      // Before idle_timeout would close it.
      c.close();
    }));
    // A third user, while every slot is taken and the hostile queue is full.
    await sleep(500);
    const probe = client(d, { uid: OTHER_UID }, 'probe', JSON.stringify({ name: 'probe', builder: '/bin/true', inputs: TOOL_INPUTS, env }));

    await sleep(HOLD_MS - 1500);
    const logFile = () => join(d.stateDir, 'logs', readdirSync(join(d.stateDir, 'logs')).find((name) => name.endsWith(`-${floodId}.log`))!);
    const heldBytes = statSync(logFile()).size;
    t.ok(heldBytes < 16 << 20, `while its client read nothing the flood's output was not read either: ${heldBytes} bytes in its log file`);

    const [floodResult, queueResult, deepResult, slowResult, idleResult, probeResult] = await Promise.all([flood, queue, deep, slow, idle, probe, load]);
    t.same(deepResult, ['bad-request', 'unknown-build'], 'the deep request was a bad request; the connection was served on');
    t.same(floodResult, { id: floodId, bytes: FLOOD_BYTES, outcome: 'succeeded' }, 'the flood\'s client got its whole log once it read');
    // Besides Stockade's own lines (a fork of its init lost and retried, say).
    const notices = readFileSync(logFile(), 'latin1').match(/^stockade: [^\n]*\n/gm) ?? [];
    t.equal(statSync(logFile()).size - notices.join('').length, FLOOD_BYTES, 'and so did the log file');
    t.equal(queueResult.accepted, MAX_QUEUED + 1, 'of 1,000 builds in one write: one running besides the flood, max_queued_per_user waiting');
    t.same(queueResult.refused, { 'limit-reached': QUEUE_FLOOD - MAX_QUEUED - 1 }, 'the rest refused');
    t.same(queueResult.outcomes, { succeeded: MAX_QUEUED + 1 });
    t.ok(queueResult.shortestMs >= SLOT_SECONDS * 1000);
    t.equal(slowResult.codes[0], 'idle-timeout', 'a request sent a byte at a time was cut off');
    t.ok(slowResult.closedAfterMs < (IDLE_TIMEOUT + 2) * 1000, `after ${slowResult.closedAfterMs} ms (idle_timeout ${IDLE_TIMEOUT} s)`);
    t.equal(idleResult.codes['idle-timeout'] + idleResult.codes['limit-reached'], IDLE_CONNECTIONS, `300 idle connections: each refused or timed out (${JSON.stringify(idleResult.codes)})`);
    t.ok(idleResult.codes['limit-reached'] >= IDLE_CONNECTIONS - 8, 'most refused at once by max_connections_per_user');
    t.equal(probeResult.outcome, 'succeeded');
    // Every slot was taken when it came: it waits for the first to free, never behind the hostile queue.
    t.ok(probeResult.startedAfterMs < queueResult.longestMs, `another user's build started ${probeResult.startedAfterMs} ms after it was submitted, within one build slot's time (a hostile build took ${queueResult.shortestMs}-${queueResult.longestMs} ms)`);

    const finished = clients.flatMap((c) => c.events.filter((e) => e.type === 'finished'));
    t.equal(finished.length, BUILDS, 'every legitimate build finished');
    // Build n prints n and exits n % 3.
    const wrong = clients.flatMap((c) => c.events.flatMap((e) => (e.type === 'finished' && e.exit_code !== Number(c.logOf(e.id)) % 3 ? [`${c.logOf(e.id).trim()}: ${e.outcome} ${e.exit_code}`] : [])));
    t.same(wrong, [], 'each with its own status');
    t.same(clients.flatMap((c) => c.events.filter((e) => e.type === 'error')), [], 'none refused');
    clearInterval(sampler);
    t.ok(peakKiB < RSS_LIMIT_KIB, `daemon RSS peaked at ${peakKiB} KiB (limit ${RSS_LIMIT_KIB} KiB)`);
    t.equal(d.child!.exitCode, null, 'the daemon never exited');
    t.notMatch(d.log, /internal error/, 'nor failed inside');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });
}

