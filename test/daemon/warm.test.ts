// Warm workers: the daemon keeps inits started ahead, hands each to one build only, refills,
// and kills the idle ones on shutdown.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon, shSpec, toolArgs } from './helpers.js';

const READY = /warm: worker pid (\d+) ready/g;
const readyPids = (log: string) => [...log.matchAll(READY)].map((m) => Number(m[1]));
const status = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8');
const syscall = (pid: number) => readFileSync(`/proc/${pid}/syscall`, 'utf8');
/** The nice value, field 19 of /proc/PID/stat (after the command name, which may hold spaces). */
const nice = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
/** A zombie has ended: whoever inherited it (not us) may not have reaped it yet. */
const running = (pid: number) => {
  try {
    return !/\nState:\s+Z/.test(status(pid));
  } catch {
    return false;
  }
};

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('builds use inits started before they were asked for, each once; the pool refills; shutdown kills the idle ones', async (t) => {
    const d = new TestDaemon({ args: ['--warm', '2'] });
    t.teardown(() => d.remove());
    await d.start();
    const before = readyPids(d.log.slice(0, d.log.indexOf('listening on ')));
    t.equal(before.length, 2, 'two workers ready before the daemon listens');
    for (const pid of before) {
      const s = status(pid);
      t.match(s, new RegExp(`\\nPPid:\\s+${d.child!.pid}\\n`), `worker ${pid} is the daemon's child`);
      t.match(s, new RegExp(`\\nNSpid:\\s+${pid}\\s+1\\n`), `worker ${pid} is PID 1 of its own PID namespace`);
      t.equal(nice(pid), 19, `idle worker ${pid} waits at the lowest CPU priority`);
      // read(2) is syscall 0 on x86_64: ready means Node has started and init waits for its request.
      for (let waited = 0; !/^0 0x3 /.test(syscall(pid)) && waited < 1000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      t.match(syscall(pid), /^0 0x3 /, `worker ${pid}, said ready, is blocked reading its request on fd 3`);
    }
    const c = await d.connect();
    t.teardown(() => c.close());
    const used: number[] = [];
    for (const name of ['first', 'second', 'third']) {
      const from = d.log.length;
      c.build('test', shSpec(name, 'echo $$; cut -d" " -f19 /proc/self/stat'));
      const accepted = await c.waitFor('accepted', (e) => !c.events.some((f) => f.type === 'finished' && f.id === e.id));
      const finished = await c.waitFor('finished', (e) => e.id === accepted.id);
      t.equal(finished.outcome, 'succeeded', finished.message ?? '');
      t.equal(c.logOf(accepted.id), '1\n0\n', "the builder is PID 1 of the worker's namespace, at normal priority");
      const line = new RegExp(`build ${accepted.id}: running as uid \\d+, init pid (\\d+) \\(warm worker\\)`).exec(d.log.slice(from));
      t.ok(line, `build ${name} used a warm worker`);
      const pid = Number(line![1]);
      t.ok(readyPids(d.log.slice(0, from)).includes(pid), `its init (pid ${pid}) was ready before the request`);
      t.notOk(used.includes(pid), 'a worker serves one build only');
      used.push(pid);
      t.notOk(existsSync(`/proc/${pid}`), 'the used worker is gone');
      await d.waitForLog(new RegExp(`warm: worker pid (?!${used.join('|')})\\d+ ready`), from);
    }
    const idle = readyPids(d.log).filter((pid) => !used.includes(pid));
    t.equal(idle.length, 2, 'the pool refilled to two');
    t.equal(await d.stop(), 0);
    t.match(d.log, 'warm: 2 idle workers killed');
    for (const pid of idle) t.notOk(existsSync(`/proc/${pid}`), `idle worker ${pid} is gone after shutdown`);
    t.same(d.leftovers(), []);
  });

  t.test('idle workers of a daemon killed with SIGKILL read end-of-file and exit', async (t) => {
    const d = new TestDaemon({ args: ['--warm', '2'] });
    t.teardown(() => d.remove());
    await d.start();
    const idle = readyPids(d.log);
    t.equal(idle.length, 2);
    await d.kill9();
    const deadline = Date.now() + 30_000;
    while (idle.some(running) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.same(idle.filter(running), [], 'no worker outlives its daemon');
  });

  t.test('--warm 0 starts every init cold', async (t) => {
    const d = new TestDaemon({ args: ['--warm', '0'] });
    t.teardown(() => d.remove());
    await d.start();
    const r = await d.client(['--policy', 'test', ...toolArgs(), '--', '/bin/true']);
    t.equal(r.status, 0, r.stderr);
    t.match(d.log, /running as uid \d+, init pid \d+ \(started cold\)/);
    t.notMatch(d.log, /warm: worker/);
    t.equal(await d.stop(), 0);
  });
}
