// A fresh-Node init dying before it reads its request (here: a memory limit too small for Node to
// start) is a set-up failure the supervisor reports and cleans up after, not a crash of the supervisor.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { CLEAN_ENV, IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, runArgs } from './helpers.js';

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('init killed before it reads its request: exit 125, the reason named, nothing left', async (t) => {
    const sb = makePolicy('guix-default', 'limits: { cgroup: { memory: 8M } }\n');
    t.teardown(() => removeSandbox(sb));
    // A name of its own: cgroups are host-wide, and other test runs make theirs meanwhile.
    const name = `init-lost-${randomBytes(4).toString('hex')}`;
    // Without --single-threaded: a forked init needs no Node start-up, so init is a fresh Node.
    const args = runArgs(sb, 'echo the builder ran', ['--name', name]).slice(1);
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000, env: { ...CLEAN_ENV, STOCKADE_BUILDS_DIR: sb.registry } });
    t.equal(r.status, 125, r.stderr);
    t.equal(r.stdout, '', 'the builder never ran');
    t.match(r.stderr, /^stockade: sandbox setup failed: init ended before reading its request \((ECONNRESET|EPIPE)\)\n$/);
    t.same(leftovers(sb).filter((l) => !l.startsWith('cgroups under')), []);
    const cgroups = ['/sys/fs/cgroup/memory/stockade', '/sys/fs/cgroup/unified/stockade', '/sys/fs/cgroup/stockade']
      .flatMap((root) => (existsSync(root) ? readdirSync(root).filter((n) => n.startsWith(name + '-')) : []));
    t.same(cgroups, [], "the build's memory cgroup is gone");
  });
}
