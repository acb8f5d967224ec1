// A build's cgroup is how its processes are killed once it is over (instead of a /proc scan of its
// user): everything in it dies, children forked meanwhile included, and it is removed.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { addProcess, createCgroup, destroyCgroup, emptyCgroup } from '../../src/runtime/cgroup.js';
import { IS_ROOT, NOT_ROOT_REASON } from './helpers.js';

const NO_LIMITS = { rlimits: {}, cgroup: {}, maxInputs: 1, outputBytes: null, buildDirBytes: null };

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  const id = `reap-test-${randomBytes(6).toString('hex')}`;
  const cgroup = createCgroup(id, NO_LIMITS);
  if (!cgroup) {
    t.plan(0, 'this host has no cgroup controller a build could use (the pool\'s /proc scan is used instead)');
  } else {
    t.teardown(() => destroyCgroup(cgroup));
    t.test('everything in a build cgroup is killed, children included, and the cgroup is then removed', async (t) => {
      // The shell forks on and on while it is being killed: a fork bomb in small.
      const forker = spawn('sh', ['-c', 'sleep 1000 & sleep 1000 & while :; do sleep 1000 & sleep 0.01; done'], { stdio: 'ignore' });
      const exited = once(forker, 'exit');
      addProcess(cgroup, forker.pid!);
      const procs = join(cgroup.dirs[0], 'cgroup.procs');
      const deadline = Date.now() + 5000;
      while (readFileSync(procs, 'utf8').split('\n').filter(Boolean).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const before = readFileSync(procs, 'utf8').split('\n').filter(Boolean).map(Number);
      t.ok(before.length >= 3, `the shell and its children are in the cgroup (${before.length})`);
      const { killed } = await emptyCgroup(cgroup);
      t.ok(killed >= before.length, `every process counted (${killed})`);
      t.same((await exited)[1], 'SIGKILL', 'the shell was killed');
      for (const dir of cgroup.dirs) t.same(readFileSync(join(dir, 'cgroup.procs'), 'utf8'), '', `${dir} is empty`);
      for (const pid of before) t.notOk(existsSync(`/proc/${pid}/status`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')), `pid ${pid} is gone`);
      await destroyCgroup(cgroup);
      for (const dir of cgroup.dirs) t.notOk(existsSync(dir), `${dir} removed`);
    });
  }
}
