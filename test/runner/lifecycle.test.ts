// stockade runner: actions ended from outside (the policy's timeout, a cancelled call) and the
// policy's choices of where the input root and the temporary directory go.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { IS_ROOT, NOT_ROOT_REASON } from '../runtime/helpers.js';
import { eventually, startWorker, usageOf, type Worker } from './harness.js';

const PATH = '/usr/bin:/bin';

function uidsIn(root: string): number[] {
  const found = new Set<number>([statSync(root).uid]);
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      found.add(statSync(join(dir, entry.name)).uid);
      if (entry.isDirectory()) walk(join(dir, entry.name));
    }
  };
  walk(root);
  return [...found];
}

t.test('stockade runner: timeouts, cancellation, policy choices', { skip: IS_ROOT ? false : NOT_ROOT_REASON }, async (t) => {
  const worker: Worker = await startWorker({
    extra: 'timeouts: { total: 5, max_silent: 0 }\nremote_execution: { input_root: real, temporary_directory: tmpdir }\nlimits: { output_bytes: 1000 }\n',
    runnerArgs: ['--socket-group', '0'],
  });
  t.teardown(() => worker.stop());

  t.test('--socket-group makes the socket 0660 root:GROUP', async (t) => {
    const st = statSync(worker.socket);
    t.equal(st.mode & 0o777, 0o660);
    t.equal(st.gid, 0);
  });

  t.test("stdout and stderr together are cut at the policy's limits.output_bytes, with a note", async (t) => {
    const a = worker.layOut('cut');
    const res = await worker.run({ ...a.request, arguments: ['/bin/sh', '-c', 'head -c 3000 /dev/zero | tr "\\0" a; head -c 3000 /dev/zero | tr "\\0" b >&2'], environment_variables: { PATH } });
    t.equal(res.exit_code, 0);
    const out = readFileSync(join(a.dir, 'stdout'), 'utf8');
    const err = readFileSync(join(a.dir, 'stderr'), 'utf8');
    t.equal(out.replace(/\n\[stockade runner: .*\]\n$/, '').length + err.replace(/\n\[stockade runner: .*\]\n$/, '').length, 1000, '1000 bytes of output kept');
    t.match(out + err, /output cut at 1000 bytes \(limits\.output_bytes\)/);
  });

  t.test('an action the policy\'s timeout kills answers exit_code -1 and termination_signal KILL', async (t) => {
    const a = worker.layOut('timeout');
    const res = await worker.run({ ...a.request, arguments: ['/bin/sh', '-c', 'echo started; sleep 60'], environment_variables: { PATH } });
    t.equal(res.exit_code, -1);
    t.equal(usageOf(res).termination_signal, 'KILL');
    t.equal(readFileSync(join(a.dir, 'stdout'), 'utf8'), 'started\n');
  });

  t.test('cancelling the call mid-run kills the whole action and leaves nothing', async (t) => {
    const a = worker.layOut('cancel');
    // A child and a grandchild that outlive the shell's own wait, so the whole tree must go.
    const { call, done } = worker.call({ ...a.request, arguments: ['/bin/sh', '-c', '(sleep 50 & sleep 40) & echo started; touch made-by-action; sleep 30'], environment_variables: { PATH } });
    const started = await eventually(() => readFileSync(join(a.dir, 'stdout'), { encoding: 'utf8', flag: 'a+' }), (s) => s.includes('started'));
    t.equal(started, 'started\n', 'the action ran');
    call.cancel();
    const err = await done.then(() => undefined, (e: grpc.ServiceError) => e);
    t.equal(err?.code, grpc.status.CANCELLED, 'the caller sees CANCELLED');
    t.same(await eventually(() => worker.leftovers(), (l) => l.length === 0), [], 'no process, mount, cgroup or build directory left');
    t.same(await eventually(() => uidsIn(a.root), (uids) => uids.length === 1 && uids[0] === 0), [0], 'what the action made is handed back to the worker\'s user');
    t.ok(statSync(join(a.root, 'made-by-action'), { throwIfNoEntry: false }), 'its file is still there for the worker to collect');
  });

  t.test('remote_execution.input_root real puts the input root at its host path; tmpdir sets TMPDIR=/tmp', async (t) => {
    const a = worker.layOut('real', {}, ['w']);
    const res = await worker.run({ ...a.request, arguments: ['/bin/sh', '-c', 'pwd -P; echo "$TMPDIR"; echo x > "$TMPDIR/x"'], working_directory: 'w', environment_variables: { PATH } });
    t.equal(res.exit_code, 0);
    t.equal(readFileSync(join(a.dir, 'stdout'), 'utf8'), `${join(a.root, 'w')}\n/tmp\n`);
    t.equal(readFileSync(join(a.dir, 'tmp/x'), 'utf8'), 'x\n');
  });
});

t.test('an input root at its real path beneath the sandbox\'s /tmp is refused (INTERNAL), not mounted into the temporary directory', { skip: IS_ROOT ? false : NOT_ROOT_REASON }, async (t) => {
  const worker = await startWorker({ parent: '/tmp', extra: 'remote_execution: { input_root: real }\n' });
  t.teardown(() => worker.stop());
  const a = worker.layOut('clash');
  const err = await worker.run({ ...a.request, arguments: ['/bin/true'], environment_variables: {} }).then(() => undefined, (e: grpc.ServiceError) => e);
  t.equal(err?.code, grpc.status.INTERNAL);
  t.match(err?.details ?? '', /overlaps tmp \/tmp/);
  t.same(readdirSync(join(a.dir, 'tmp')), [], 'nothing made in the temporary directory');
});
