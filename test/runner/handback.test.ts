// stockade runner: what bb_worker finds after an action that waited for, or made, more than the
// ordinary: a call given up while waiting for the pool's only user, names that are not UTF-8,
// setuid and setgid bits, and trees past the hand-back's bounds.
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { IS_ROOT, NOT_ROOT_REASON } from '../runtime/helpers.js';
import { eventually, startWorker, type Worker } from './harness.js';

const PATH = '/usr/bin:/bin';

/** Every entry beneath `root` (the root included), names as bytes, so none is lost to decoding. */
function entries(root: Buffer): { path: Buffer; uid: number; gid: number; mode: number }[] {
  const found: { path: Buffer; uid: number; gid: number; mode: number }[] = [];
  const walk = (dir: Buffer) => {
    const st = lstatSync(dir);
    found.push({ path: dir, uid: st.uid, gid: st.gid, mode: st.mode });
    if (!st.isDirectory()) return;
    for (const name of readdirSync(dir, { encoding: 'buffer' })) walk(Buffer.concat([dir, Buffer.from('/'), name]));
  };
  walk(root);
  return found;
}

/** The files the runner process holds open under `dir`. */
function openUnder(pid: number, dir: string): string[] {
  const held: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target === dir || target.startsWith(dir + '/')) held.push(target);
    } catch {
      // Closed since it was listed.
    }
  }
  return held;
}

const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (e: grpc.ServiceError) => e);

t.test('stockade runner: waits given up, byte names, set-id bits, tree bounds', { skip: IS_ROOT ? false : NOT_ROOT_REASON }, async (t) => {
  // One build user, so a second action must wait for it.
  const worker: Worker = await startWorker({ count: 1, extra: 'timeouts: { total: 300, max_silent: 0 }\n', runnerArgs: ['--max-tree-entries', '400'] });
  t.teardown(() => worker.stop());
  const pid = worker.runner.pid!;
  const waits = () => worker.stderr().split('waiting for a free build user').length - 1;

  t.test('a call cancelled, or past its deadline, while waiting for a build user is dropped at once and never runs', async (t) => {
    const holder = worker.layOut('holder');
    const held = worker.call({ ...holder.request, arguments: ['/bin/sh', '-c', 'echo started; sleep 200'], environment_variables: { PATH } });
    t.equal(await eventually(() => readFileSync(join(holder.dir, 'stdout'), { encoding: 'utf8', flag: 'a+' }), (s) => s === 'started\n'), 'started\n', 'the first action holds the only build user');

    const cancelled = worker.layOut('cancelled');
    const before = waits();
    const waiting = worker.call({ ...cancelled.request, arguments: ['/bin/sh', '-c', 'touch ran'], environment_variables: { PATH } });
    t.equal(await eventually(waits, (n) => n > before), before + 1, 'the second action waits');
    waiting.call.cancel();
    t.equal((await failure(waiting.done))?.code, grpc.status.CANCELLED);
    t.same(await eventually(() => openUnder(pid, cancelled.dir), (held) => held.length === 0), [], 'the runner lets go of the cancelled action at once (the first still runs)');

    const late = worker.layOut('late');
    const deadlined = worker.run({ ...late.request, arguments: ['/bin/sh', '-c', 'touch ran'], environment_variables: { PATH } }, { deadline: Date.now() + 1500 });
    t.equal((await failure(deadlined))?.code, grpc.status.DEADLINE_EXCEEDED);
    t.same(await eventually(() => openUnder(pid, late.dir), (held) => held.length === 0), [], 'the runner lets go of the action past its deadline at once');

    held.call.cancel();
    await failure(held.done);
    const next = worker.layOut('next');
    const res = await worker.run({ ...next.request, arguments: ['/bin/sh', '-c', 'touch ran'], environment_variables: { PATH } });
    t.equal(res.exit_code, 0, 'the build user is free again for the next action');
    t.ok(lstatSync(join(next.root, 'ran'), { throwIfNoEntry: false }), 'which ran');
    t.notOk(lstatSync(join(cancelled.root, 'ran'), { throwIfNoEntry: false }), 'the cancelled action never ran');
    t.notOk(lstatSync(join(late.root, 'ran'), { throwIfNoEntry: false }), 'the action past its deadline never ran');
    t.same(worker.leftovers(), []);
  });

  t.test('everything the action made is the worker\'s, whatever its name, never following its symlinks; modes kept but setgid', async (t) => {
    const a = worker.layOut('bytes');
    // Outside the input root, owned by the build user: a hand-back following the action's symlink would give it away.
    const victim = join(a.dir, 'victim');
    writeFileSync(victim, 'victim');
    chownSync(victim, worker.firstUid, worker.firstUid);
    // A setgid directory: what the action makes in it inherits the bit, no chmod needed.
    mkdirSync(join(a.root, 'shared'), { mode: 0o755 });
    chmodSync(join(a.root, 'shared'), 0o2775);
    const script = [
      'd=$(printf "d\\377"); f=$(printf "f\\376\\377")',
      'mkdir "$d" "$d/$d" && echo inside > "$d/$f" && echo deeper > "$d/$d/$f"',
      `ln -s ${victim} "$(printf "l\\377")"`,
      'mkfifo "$(printf "p\\377")"',
      'mkdir shared/sub && echo > shared/sub/in',
      'echo > open && chmod 666 open',
      'stat -c "%a %n" shared/sub open',
    ].join('\n');
    const res = await worker.run({ ...a.request, arguments: ['/bin/sh', '-ec', script], environment_variables: { PATH } });
    t.equal(res.exit_code, 0, readFileSync(join(a.dir, 'stderr'), 'utf8'));
    t.equal(readFileSync(join(a.dir, 'stdout'), 'utf8'), '2755 shared/sub\n666 open\n', 'in the sandbox, the new directory inherited setgid');

    const all = entries(Buffer.from(a.root));
    t.equal(all.length, 11, 'the harness sees every entry');
    t.same(all.filter((e) => e.uid !== 0 || e.gid !== 0).map((e) => e.path.toString('latin1')), [], 'every entry owned by the build directory\'s owner (root)');
    t.equal(lstatSync(join(a.root, 'shared/sub')).mode & 0o7777, 0o755, 'the new directory lost setgid');
    t.equal(lstatSync(join(a.root, 'shared')).mode & 0o7777, 0o775, 'so did the worker\'s own directory, lent to the action\'s user while it ran');
    t.equal(lstatSync(join(a.root, 'open')).mode & 0o7777, 0o666, 'a world-writable output stays so');
    t.equal(readFileSync(Buffer.from(`${a.root}/d\xff/d\xff/f\xfe\xff`, 'latin1'), 'utf8'), 'deeper\n', 'the file under byte names is intact');
    t.equal(lstatSync(victim).uid, worker.firstUid, 'the symlink\'s target is untouched');
  });

  t.test('an action that made more entries than --max-tree-entries, or a deeper tree, is answered RESOURCE_EXHAUSTED', async (t) => {
    const many = worker.layOut('many');
    const wide = await failure(worker.run({ ...many.request, arguments: ['/bin/sh', '-c', 'touch $(seq 500)'], environment_variables: { PATH } }));
    t.equal(wide?.code, grpc.status.RESOURCE_EXHAUSTED);
    t.match(wide?.details ?? '', /more than 400 entries.*stay owned by uid \d+/);
    t.match(worker.stderr(), /stockade runner: action tree holds more than 400 entries/, 'the runner says so on its stderr');

    const deep = worker.layOut('deep');
    const err = await failure(worker.run({ ...deep.request, arguments: ['/bin/sh', '-c', 'mkdir -p $(printf "a/%.0s" $(seq 300))'], environment_variables: { PATH } }));
    t.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED);
    t.match(err?.details ?? '', /deeper than 256 levels/);
    t.equal(lstatSync(join(deep.root, 'a')).uid, 0, 'what the walk reached is handed back');

    const files = Object.fromEntries(Array.from({ length: 450 }, (_, i) => [`in/${i}`, 'input']));
    const big = worker.layOut('big', files);
    const refused = await failure(worker.run({ ...big.request, arguments: ['/bin/sh', '-c', 'touch ran'], environment_variables: { PATH } }));
    t.equal(refused?.code, grpc.status.RESOURCE_EXHAUSTED, 'an input root laid out past the bound too');
    t.notOk(lstatSync(join(big.root, 'ran'), { throwIfNoEntry: false }), 'and that action never ran');
    t.same(entries(Buffer.from(big.root)).filter((e) => e.uid !== 0).map((e) => e.path.toString('latin1')), [], 'its directories are the worker\'s again');

    const after = worker.layOut('after');
    t.equal((await worker.run({ ...after.request, arguments: ['/bin/true'], environment_variables: {} })).exit_code, 0, 'the runner serves the next action');
    t.same(worker.leftovers(), []);
  });
});

t.test('stockade runner under a policy that lets actions chmod setuid and setgid: the bits are gone on hand-back', { skip: IS_ROOT ? false : NOT_ROOT_REASON }, async (t) => {
  // strict's seccomp rules refuse those modes in the sandbox; this policy drops them, so the hand-back alone must clear them.
  const worker = await startWorker({ count: 1, extra: 'seccomp:\n  rules: []\n' });
  t.teardown(() => worker.stop());
  const a = worker.layOut('setid');
  const script = [
    'd=$(printf "d\\377"); s=$(printf "s\\377")',
    'mkdir "$d" && echo > "$d/$s" && chmod 6755 "$d/$s"',
    'echo > suid && chmod 4755 suid',
    'echo > sgid && chmod 2755 sgid',
    'echo > sgid-nox && chmod 2644 sgid-nox',
    'mkdir sgid-dir && chmod 2775 sgid-dir',
    'stat -c "%a %n" suid sgid sgid-nox sgid-dir "$d/$s" | tr "\\377" "?"',
  ].join('\n');
  const res = await worker.run({ ...a.request, arguments: ['/bin/sh', '-ec', script], environment_variables: { PATH } });
  t.equal(res.exit_code, 0, readFileSync(join(a.dir, 'stderr'), 'utf8'));
  t.equal(readFileSync(join(a.dir, 'stdout'), 'utf8'), '4755 suid\n2755 sgid\n2644 sgid-nox\n2775 sgid-dir\n6755 d?/s?\n', 'in the sandbox, the bits were set');
  const mode = (name: string | Buffer) => lstatSync(Buffer.isBuffer(name) ? name : join(a.root, name)).mode & 0o7777;
  t.equal(mode('suid'), 0o755);
  t.equal(mode('sgid'), 0o755);
  t.equal(mode('sgid-nox'), 0o644, 'setgid without group exec, which chown alone keeps, is cleared too');
  t.equal(mode('sgid-dir'), 0o775, 'a directory\'s setgid, which chown alone keeps, is cleared');
  t.equal(mode(Buffer.from(`${a.root}/d\xff/s\xff`, 'latin1')), 0o755, 'under a name that is not UTF-8 too');
  t.same(entries(Buffer.from(a.root)).filter((e) => e.uid !== 0).map((e) => e.path.toString('latin1')), [], 'all owned by root');
});
