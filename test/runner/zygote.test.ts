// stockade runner's zygotes, as the daemon's: `--warm N` zygote processes, children of the
// runner, fork the actions' inits; an action finding none free starts a fresh Node init and is
// just as correct; the zygotes end with the runner.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { IS_ROOT, NOT_ROOT_REASON } from '../runtime/helpers.js';
import { startWorker } from './harness.js';

const PATH = '/usr/bin:/bin';

function statusField(pid: number, field: string): string | undefined {
  try {
    return new RegExp(`\\n${field}:\\s+(\\S+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Host pids of the processes running as `uid` (real uid). */
function processesAs(uid: number): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => statusField(pid, 'Uid') === String(uid));
}

/** `pid` and its ancestors up to, not past, `stop`. */
function ancestry(pid: number, stop: number): number[] {
  const chain = [pid];
  while (chain[chain.length - 1] !== stop && chain.length < 64) {
    const parent = Number(statusField(chain[chain.length - 1], 'PPid') ?? 0);
    if (parent <= 1) break;
    chain.push(parent);
  }
  return chain;
}

t.test('stockade runner --warm: zygotes fork the inits; an action finding none free runs on a fresh Node init', { skip: IS_ROOT ? false : NOT_ROOT_REASON }, async (t) => {
  const worker = await startWorker({ count: 2, runnerArgs: ['--warm', '1'] });
  t.teardown(() => worker.stop());
  const runnerPid = worker.runner.pid!;
  const zygotes = [...worker.stderr().matchAll(/zygote pid (\d+) started/g)].map((m) => Number(m[1]));
  t.equal(zygotes.length, 1, 'one zygote');
  t.match(worker.stderr(), 'zygote: 1 of 1 ready');
  t.equal(statusField(zygotes[0], 'PPid'), String(runnerPid), "the zygote is the runner's child");

  const actions = ['a', 'b'].map((id) => {
    const a = worker.layOut(id);
    return { ...a, ...worker.call({ ...a.request, arguments: ['/bin/sh', '-c', 'echo started; exec sleep 60'], environment_variables: { PATH } }) };
  });
  const until = Date.now() + 30_000;
  const started = () => actions.every((a) => readFileSync(join(a.dir, 'stdout'), { encoding: 'utf8', flag: 'a+' }) === 'started\n');
  while (!started() && Date.now() < until) await sleep(100);
  t.ok(started(), 'both actions run at once');

  const builders = [worker.firstUid, worker.firstUid + 1].flatMap(processesAs).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'));
  t.equal(builders.length, 2, 'a builder per action');
  const viaZygote = builders.filter((pid) => ancestry(pid, runnerPid).includes(zygotes[0]));
  t.equal(viaZygote.length, 1, "one action's init was forked by the zygote");
  const fresh = builders.filter((pid) => !viaZygote.includes(pid));
  t.ok(fresh.length === 1 && ancestry(fresh[0], runnerPid).at(-1) === runnerPid, "the other's init is a fresh Node, the runner's own child");

  for (const a of actions) a.call.cancel();
  for (const a of actions) t.equal((await a.done.then(() => undefined, (e: grpc.ServiceError) => e))?.code, grpc.status.CANCELLED);

  const after = worker.layOut('after');
  const res = await worker.run({ ...after.request, arguments: ['/bin/sh', '-c', 'echo $$; ls /proc/$$/fd'], environment_variables: { PATH } });
  t.equal(res.exit_code, 0);
  t.equal(readFileSync(join(after.dir, 'stdout'), 'utf8'), '1\n0\n1\n2\n', 'a forked action is PID 1 with fds 0-2 only, as a fresh one');

  const stopped = new Promise((resolve) => worker.runner.once('exit', resolve));
  worker.runner.kill('SIGTERM');
  await stopped;
  t.match(worker.stderr(), 'zygote: 1 ended');
  t.notOk(existsSync(`/proc/${zygotes[0]}`), 'the zygote is gone with the runner');
  t.same(worker.leftovers(), []);
});

t.test('stockade runner --warm 0: every init a fresh Node', { skip: IS_ROOT ? false : NOT_ROOT_REASON }, async (t) => {
  const worker = await startWorker({ count: 1, runnerArgs: ['--warm', '0'] });
  t.teardown(() => worker.stop());
  t.notMatch(worker.stderr(), /zygote/);
  const a = worker.layOut('fresh');
  const res = await worker.run({ ...a.request, arguments: ['/bin/sh', '-c', 'echo ok'], environment_variables: { PATH } });
  t.equal(res.exit_code, 0);
  t.equal(readFileSync(join(a.dir, 'stdout'), 'utf8'), 'ok\n');
});
