// The daemon's own life: policies re-read on change and on SIGHUP (an invalid edit keeps the
// last good version), graceful shutdown on SIGTERM, and recovery after a kill -9.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon, lockRecord, shSpec, toolArgs } from './helpers.js';
import { CLI, ROOT } from '../runtime/helpers.js';


if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a policy edited to invalid keeps its last good version, and says why', async (t) => {
    const d = new TestDaemon({ extra: 'environment: { set: { MARK: v1 } }\n' });
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    t.teardown(() => c.close());
    const mark = async () => {
      c.build('test', shSpec('mark', 'echo $MARK'));
      const { id } = await c.waitFor('accepted', (e) => !c.events.some((f) => f.type === 'finished' && f.id === e.id));
      const finished = await c.waitFor('finished', (e) => e.id === id);
      t.equal(finished.outcome, 'succeeded');
      return c.logOf(id);
    };
    t.equal(await mark(), 'v1\n');
    const original = readFileSync(d.policyFile, 'utf8');
    let from = d.log.length;
    writeFileSync(d.policyFile, original.replace('MARK: v1', 'MARK: v2'));
    await d.waitForLog(/reloaded 'test'/, from);
    t.equal(await mark(), 'v2\n', 'a changed file is picked up');

    from = d.log.length;
    writeFileSync(d.policyFile, original.replace('MARK: v1', 'MARK: v3') + 'network: everywhere\n');
    const line = original.split('\n').length;
    const message = await d.waitForLog(new RegExp(`test\\.yaml is invalid, keeping the last good version of 'test':\\n.*test\\.yaml:${line}:10: network: .*`), from);
    t.ok(message, `logged: ${message}`);
    t.equal(await mark(), 'v2\n', 'the last good version still serves');

    from = d.log.length;
    d.child!.kill('SIGHUP');
    await d.waitForLog(/reloading \(SIGHUP\)[^]*keeping the last good version of 'test'/, from);
    writeFileSync(d.policyFile, original.replace('MARK: v1', 'MARK: v4'));
    from = d.log.length;
    d.child!.kill('SIGHUP');
    await d.waitForLog(/reloaded 'test'/, from);
    t.equal(await mark(), 'v4\n', 'fixed again, the new version serves');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('a second daemon on the same state directory or socket refuses to start and removes nothing', async (t) => {
    const d = new TestDaemon();
    t.teardown(() => d.remove());
    await d.start();
    const second = spawnSync(process.execPath, [CLI, 'daemon', '--socket', d.socket + '.2', '--policies', d.policies, '--state-dir', d.stateDir], { encoding: 'utf8', env: {} });
    t.equal(second.status, 1);
    t.match(second.stderr, `cannot start: another stockade daemon (pid ${d.child!.pid}) uses state directory ${d.stateDir}`);
    const third = spawnSync(process.execPath, [CLI, 'daemon', '--socket', d.socket, '--policies', d.policies, '--state-dir', d.stateDir + '.2'], { encoding: 'utf8', env: {} });
    t.equal(third.status, 1);
    t.match(third.stderr, `cannot start: another daemon is listening on ${d.socket}`);
    t.ok(existsSync(d.socket), "the running daemon's socket is still there");
    const c = await d.connect();
    c.build('test', shSpec('still', 'echo served'));
    t.equal((await c.waitFor('finished')).outcome, 'succeeded');
    c.close();
    t.equal(await d.stop(), 0);
  });

  t.test("builds work within the capability bounding set of the systemd unit", async (t) => {
    const unit = readFileSync(join(ROOT, 'contrib/stockade.service'), 'utf8');
    const caps = /^CapabilityBoundingSet=(.*)$/m.exec(unit)![1].split(' ').map((c) => '+' + c.replace(/^CAP_/, '').toLowerCase());
    const d = new TestDaemon({ extra: 'limits: { cgroup: { pids: 64 } }\n', wrap: ['/usr/bin/setpriv', `--bounding-set=-all,${caps.join(',')}`] });
    t.teardown(() => d.remove());
    await d.start();
    const bounding = /^CapBnd:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${d.child!.pid}/status`, 'utf8'))![1];
    t.not(bounding, '000001ffffffffff', 'the daemon runs with a reduced bounding set');
    const out = join(d.sb.dir, 'out');
    const r = await d.client(['--policy', 'test', ...toolArgs(), '--output', out, '--', '/bin/sh', '-c', `id -u; mkdir ${out}; echo built > ${out}/f; cat /proc/self/status | grep ^CapBnd`]);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, /^\d+\nCapBnd:\s+0+\n$/);
    t.equal(readFileSync(join(out, 'f'), 'utf8'), 'built\n');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('SIGTERM: no new clients, running builds get the grace period, then are cancelled; nothing remains', async (t) => {
    const d = new TestDaemon({ maxJobs: 2, grace: 3 });
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    t.teardown(() => c.close());
    c.build('test', shSpec('quick', 'echo quick begins; sleep 1; echo quick done'));
    c.build('test', shSpec('long', 'echo long begins; sleep 100 & sleep 100'));
    c.build('test', shSpec('third', 'echo never'));
    const third = await c.waitFor('queued');
    await c.waitFor('log', (e) => e.text.includes('long begins'));
    await c.waitFor('log', (e) => e.text.includes('quick begins'));
    const stopped = d.stop();
    await d.waitForLog(/shutting down: 2 running builds get 3s/);
    t.notOk(existsSync(d.socket), 'the socket file is gone at once');
    const refused = await new Promise<string>((resolve) => connect(d.socket).on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? '')).on('connect', () => resolve('connected')));
    t.equal(refused, 'ENOENT', 'a new client cannot connect');
    const finished = (name: string) => c.events.find((e) => e.type === 'finished' && e.id === c.events.find((a) => a.type === 'accepted' && c.logOf(a.id).includes(name))?.id);
    t.equal(await stopped, 0, 'the daemon exits 0');
    const thirdEnd = c.events.find((e) => e.type === 'finished' && e.id === third.id);
    t.match(thirdEnd, { outcome: 'cancelled', message: 'the daemon shut down before the build started' });
    t.equal(c.logOf(third.id), '', 'the queued build never ran');
    t.match(finished('quick begins'), { outcome: 'succeeded', exit_code: 0 }, 'a build finishing within the grace period succeeds');
    t.match(finished('long begins'), { outcome: 'cancelled', exit_code: 143 }, 'a build outlasting it is cancelled');
    t.match(d.log, /grace period over, cancelling/);
    t.same(readdirSync(d.sb.registry).filter((n) => n !== '.lock'), [], 'no build record is left');
    t.same(d.leftovers(), []);
  });

  t.test('after kill -9 during a build, the next daemon removes every leftover and reports each', async (t) => {
    const d = new TestDaemon({ extra: 'limits: { cgroup: { pids: 64 } }\n' });
    t.teardown(() => d.remove());
    await d.start();
    const c = await d.connect();
    c.build('test', shSpec('crashed', 'echo running; sleep 100 & sleep 100'));
    await c.waitFor('log', (e) => e.text.includes('running'));
    const crashed = d.child!.pid!;
    await d.kill9();
    c.close();
    // The parent-death signal ends the build with its daemon; what it had on the host remains.
    let before = d.leftovers([crashed]);
    for (let i = 0; i < 50 && /processes of the pool/.test(before.join('\n')); i++) {
      await sleep(100);
      before = d.leftovers([crashed]);
    }
    t.notMatch(before.join('\n'), /processes of the pool/, 'the build died with the daemon');
    t.match(before.join('\n'), /build directories: guix-build-crashed\.drv-0/);
    t.match(before.join('\n'), new RegExp(`cgroups under .*crashed-${crashed}-`));
    const uids = Array.from({ length: d.sb.count }, (_, i) => d.sb.firstUid + i);
    const held = uids.filter((uid) => lockRecord(d, uid).includes(`"pid":${crashed}`));
    t.equal(held.length, 1, 'a lock record names the crashed daemon');

    await d.start();
    t.match(d.log, new RegExp(`recovery: removed cgroup .*crashed-${crashed}-\\d+-uid\\d+, of build [0-9a-f]{16} \\(crashed\\), pid ${crashed}`));
    t.match(d.log, new RegExp(`recovery: removed build directory ${d.sb.dir}/guix-build-crashed\\.drv-0, of build`));
    t.match(d.log, new RegExp(`recovery: removed stale lock record ${d.sb.stateDir}/${held[0]} \\(build crashed\\)`));
    t.match(d.log, /recovery: \d+ leftovers of dead builds removed/);
    t.same(d.leftovers([crashed, d.child!.pid!]), [], 'nothing remains');
    t.equal(lockRecord(d, held[0]), '');
    t.same(readdirSync(d.sb.registry).filter((n) => n !== '.lock'), [], 'no build record is left');

    const again = await d.connect();
    t.teardown(() => again.close());
    again.build('test', shSpec('after', 'echo fine'));
    const done = await again.waitFor('finished');
    t.equal(done.outcome, 'succeeded', 'the pool is usable again');
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });
}
