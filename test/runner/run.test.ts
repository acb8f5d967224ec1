// stockade runner as bb_worker sees it: the fake worker (harness.ts) lays actions out and calls
// Run over the socket; what it checks is what bb_worker would find afterwards.
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import t, { type Test } from 'tap';
import { IS_ROOT, NOT_ROOT_REASON } from '../runtime/helpers.js';
import { startWorker, usageOf, type Worker } from './harness.js';

const PATH = '/usr/bin:/bin';

/** Every entry of a tree with its owner, the tree's root included. */
function owners(root: string): Map<string, number> {
  const found = new Map<string, number>([['.', lstatSync(root).uid]]);
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir)) {
      const st = lstatSync(join(dir, name));
      found.set(join(rel, name), st.uid);
      if (st.isDirectory()) walk(join(dir, name), join(rel, name));
    }
  };
  walk(root, '');
  return found;
}

async function refusedWith(t: Test, promise: Promise<unknown>, code: grpc.status, pattern: RegExp, what: string): Promise<void> {
  const err = await promise.then(() => undefined, (e: grpc.ServiceError) => e);
  t.ok(err, `${what}: refused`);
  t.equal(err?.code, code, `${what}: ${grpc.status[code]}`);
  t.match(err?.details ?? '', pattern, `${what}: says why`);
}

t.test('stockade runner', { skip: IS_ROOT ? false : NOT_ROOT_REASON }, async (t) => {
  const worker: Worker = await startWorker();
  t.teardown(() => worker.stop());

  t.test('CheckReadiness: OK for a path that exists, INTERNAL for one that does not, INVALID_ARGUMENT for an escape', async (t) => {
    mkdirSync(join(worker.buildDirectory, 'ready'));
    const check = (path: string) => new Promise<grpc.ServiceError | null>((resolve) => worker.client.CheckReadiness({ path }, {}, (err) => resolve(err)));
    t.equal(await check('ready'), null);
    t.equal((await check('not-there'))?.code, grpc.status.INTERNAL);
    t.equal((await check('../..'))?.code, grpc.status.INVALID_ARGUMENT);
    t.equal(statSync(worker.socket).mode & 0o777, 0o600, 'the socket is for root alone');
  });

  t.test('stdout and stderr go to the requested files; exit codes 0 and 1; outputs are left readable and owned by the worker', async (t) => {
    const a = worker.layOut('outputs', { 'src/build.sh': '#!/bin/sh\necho to-stdout\necho to-stderr >&2\nmkdir -p gen/deep\necho made > gen/deep/file\necho result > out/result.txt\nexit "$1"\n', 'src/input.txt': 'input\n' }, ['out']);
    const ok = await worker.run({ ...a.request, arguments: ['/bin/sh', 'src/build.sh', '0'], environment_variables: { PATH } });
    t.equal(ok.exit_code, 0);
    t.equal(readFileSync(join(a.dir, 'stdout'), 'utf8'), 'to-stdout\n');
    t.equal(readFileSync(join(a.dir, 'stderr'), 'utf8'), 'to-stderr\n');
    t.equal(readFileSync(join(a.root, 'out/result.txt'), 'utf8'), 'result\n');
    t.equal(readFileSync(join(a.root, 'gen/deep/file'), 'utf8'), 'made\n');
    const owner = statSync(worker.buildDirectory).uid;
    const notWorkers = [...owners(a.root), ...owners(join(a.dir, 'tmp'))].filter(([, uid]) => uid !== owner);
    t.same(notWorkers, [], 'every entry of the input root and tmp belongs to the build directory\'s owner');
    t.equal(statSync(join(a.dir, 'stdout')).uid, owner, 'the stdout file too');
    t.equal(readFileSync(join(a.root, 'src/input.txt'), 'utf8'), 'input\n', 'the input is unchanged');
    t.equal(statSync(join(a.root, 'src/input.txt')).mode & 0o777, 0o444, 'and keeps its mode');

    const b = worker.layOut('exit-1', { 'src/build.sh': '#!/bin/sh\necho failing >&2\nexit 1\n' });
    const failed = await worker.run({ ...b.request, arguments: ['/bin/sh', 'src/build.sh'], environment_variables: { PATH } });
    t.equal(failed.exit_code, 1);
    t.equal(readFileSync(join(b.dir, 'stderr'), 'utf8'), 'failing\n');
    t.notOk(usageOf(failed).termination_signal, 'no termination_signal for a plain exit');
  });

  t.test('resource usage: one POSIXResourceUsage in an Any, with CPU times and peak memory', async (t) => {
    const a = worker.layOut('usage');
    const res = await worker.run({ ...a.request, arguments: ['/bin/sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; head -c 20000000 /dev/zero | tail -c 1 >/dev/null'], environment_variables: { PATH } });
    t.equal(res.exit_code, 0);
    t.equal(res.resource_usage.length, 1);
    const usage = usageOf(res);
    t.ok(usage.user_time, 'user_time set');
    t.ok(usage.system_time, 'system_time set');
    t.ok((usage.user_time!.seconds * 1e9 + usage.user_time!.nanos) > 0, 'the loop used user time');
    t.ok((usage.maximum_resident_set_size ?? 0) > 0, 'peak memory in bytes');
  });

  t.test('a bare argv[0] is looked up in the request\'s PATH, relative entries from the working directory', async (t) => {
    const a = worker.layOut('path', { 'tools/greet': '#!/bin/sh\necho "greet $1"\n' }, ['work']);
    const inRoot = await worker.run({ ...a.request, arguments: ['greet', 'you'], working_directory: 'work', environment_variables: { PATH: `../tools:${PATH}` } });
    t.equal(inRoot.exit_code, 0);
    t.equal(readFileSync(join(a.dir, 'stdout'), 'utf8'), 'greet you\n', 'found in the input root');
    const b = worker.layOut('path-host');
    const onHost = await worker.run({ ...b.request, arguments: ['echo', 'from', 'usr'], environment_variables: { PATH: '/nowhere:/usr/bin' } });
    t.equal(onHost.exit_code, 0);
    t.equal(readFileSync(join(b.dir, 'stdout'), 'utf8'), 'from usr\n', 'found in the policy\'s /usr');
    const c = worker.layOut('path-missing');
    await refusedWith(t, worker.run({ ...c.request, arguments: ['no-such-tool'], environment_variables: { PATH } }), grpc.status.INVALID_ARGUMENT, /not found in PATH/, 'a name on no PATH entry');
    await refusedWith(t, worker.run({ ...c.request, arguments: ['echo'], environment_variables: {} }), grpc.status.INVALID_ARGUMENT, /no PATH/, 'a bare name without PATH');
  });

  t.test('the working directory is beneath the input root, at remote-exec\'s /build/root', async (t) => {
    const a = worker.layOut('cwd', {}, ['sub/dir']);
    const res = await worker.run({ ...a.request, arguments: ['/bin/pwd', '-P'], working_directory: 'sub/dir', environment_variables: {} });
    t.equal(res.exit_code, 0);
    t.equal(readFileSync(join(a.dir, 'stdout'), 'utf8'), '/build/root/sub/dir\n');
  });

  t.test('the environment is exactly the request\'s', async (t) => {
    const a = worker.layOut('env');
    const env = { PATH, ONLY_THIS: 'a value with spaces=and equals', EMPTY: '' };
    const res = await worker.run({ ...a.request, arguments: ['/usr/bin/env'], environment_variables: env });
    t.equal(res.exit_code, 0);
    const seen = Object.fromEntries(readFileSync(join(a.dir, 'stdout'), 'utf8').trimEnd().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    t.same(seen, env);
  });

  t.test('the action writes /tmp into the request\'s temporary directory, and cannot reach the network', async (t) => {
    const a = worker.layOut('tmp');
    const res = await worker.run({ ...a.request, arguments: ['/bin/sh', '-c', 'echo scratch > /tmp/scratch; cat /proc/net/dev | grep -c ":"'], environment_variables: { PATH } });
    t.equal(res.exit_code, 0);
    t.equal(readFileSync(join(a.dir, 'tmp/scratch'), 'utf8'), 'scratch\n');
    t.equal(readFileSync(join(a.dir, 'stdout'), 'utf8'), '1\n', 'only lo');
  });

  t.test('paths escaping the build directory are refused with INVALID_ARGUMENT, and nothing runs', async (t) => {
    const a = worker.layOut('escape', {}, ['real']);
    symlinkSync('/etc', join(a.root, 'link'));
    symlinkSync('/etc', join(a.dir, 'link'));
    const run = (over: object) => worker.run({ ...a.request, arguments: ['/bin/sh', '-c', 'echo ran > /tmp/ran'], environment_variables: { PATH }, ...over });
    await refusedWith(t, run({ input_root_directory: '../../..' }), grpc.status.INVALID_ARGUMENT, /escapes/, 'input root through ..');
    await refusedWith(t, run({ input_root_directory: 'escape/link' }), grpc.status.INVALID_ARGUMENT, /symlink/, 'input root through a symlink');
    await refusedWith(t, run({ working_directory: '../..' }), grpc.status.INVALID_ARGUMENT, /escapes/, 'working directory through ..');
    await refusedWith(t, run({ working_directory: 'link' }), grpc.status.INVALID_ARGUMENT, /symlink/, 'working directory through a symlink');
    await refusedWith(t, run({ stdout_path: 'escape/link/stockade-runner-test' }), grpc.status.INVALID_ARGUMENT, /symlink/, 'stdout through a symlink');
    await refusedWith(t, run({ stderr_path: '/etc/stockade-runner-test' }), grpc.status.INVALID_ARGUMENT, /relative/, 'an absolute stderr path');
    await refusedWith(t, run({ temporary_directory: '../../../tmp' }), grpc.status.INVALID_ARGUMENT, /escapes/, 'temporary directory through ..');
    await refusedWith(t, run({ arguments: ['link/sh'] }), grpc.status.INVALID_ARGUMENT, /symlink/, 'argv[0] through a symlink of the input root');
    await refusedWith(t, run({ arguments: [] }), grpc.status.INVALID_ARGUMENT, /arguments/, 'no arguments');
    t.same(readdirSync(join(a.dir, 'tmp')), [], 'no action ran');
    t.notOk(statSync('/etc/stockade-runner-test', { throwIfNoEntry: false }), 'nothing made outside');
  });

  t.test('200 actions from 8 concurrent callers, each with its own answer', async (t) => {
    const results: string[] = [];
    await Promise.all(Array.from({ length: 8 }, async (_, caller) => {
      for (let i = 0; i < 25; i++) {
        const id = `many-${caller}-${i}`;
        const a = worker.layOut(id, { 'in.txt': `${id}\n` });
        const code = (caller * 25 + i) % 7;
        const res = await worker.run({ ...a.request, arguments: ['/bin/sh', '-c', `cat in.txt; cat in.txt > out.txt; exit ${code}`], environment_variables: { PATH } });
        const out = readFileSync(join(a.dir, 'stdout'), 'utf8');
        const made = readFileSync(join(a.root, 'out.txt'), 'utf8');
        results.push(res.exit_code === code && out === `${id}\n` && made === `${id}\n` ? 'ok' : `${id}: exit ${res.exit_code} (wanted ${code}), stdout ${JSON.stringify(out)}, out.txt ${JSON.stringify(made)}`);
      }
    }));
    t.equal(results.length, 200);
    t.same(results.filter((r) => r !== 'ok'), [], 'every action answered with its own status and output');
    t.same(worker.leftovers(), [], 'nothing left');
  });

  t.test('nothing of the actions is left behind', async (t) => {
    t.same(worker.leftovers(), []);
  });
});
