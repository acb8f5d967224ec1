// Stockade's state directories are root-only (0700), but the directories it makes above them
// are not: an unprivileged user reaches the default outputs directory beside them and runs a
// program a build handed over there.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureStateDir, makePrivateDir } from '../../src/pool/lock.js';
import { CLI, IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, run } from '../runtime/helpers.js';

const NOBODY = 65534;
const mode = (path: string) => (statSync(path).mode & 0o7777).toString(8);

t.test('the pool state dir is made 0700, the parents it makes 0755', async (t) => {
  const prefix = join(t.testdir(), 'var-lib-stockade');
  ensureStateDir(join(prefix, 'pool'));
  t.equal(mode(join(prefix, 'pool')), '700', 'the lock directory stays root-only');
  t.equal(mode(prefix), '755', 'its parent can be traversed');
  makePrivateDir(join(prefix, 'builds'));
  t.equal(mode(join(prefix, 'builds')), '700');
  t.equal(mode(prefix), '755');
});

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
} else {
  t.test('a first build makes its registry and pool state 0700 under a new prefix; nobody runs the program it handed over beside them', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    chmodSync(sb.dir, 0o755);
    // As /var/lib/stockade on a fresh host: nothing of it exists before the first build.
    const prefix = join(sb.dir, 'var-lib-stockade');
    writeFileSync(sb.policy, readFileSync(sb.policy, 'utf8').replace(`state_dir: ${sb.stateDir}`, `state_dir: ${join(prefix, 'pool')}`));
    const registry = join(prefix, 'builds');
    const out = join(prefix, 'outputs', 'hello');
    const first = run({ ...sb, registry }, 'true');
    t.equal(first.status, 0, first.stderr);
    t.equal(mode(join(prefix, 'builds')), '700', 'the build registry is root-only');
    t.equal(mode(join(prefix, 'pool')), '700', 'the pool state is root-only');
    t.equal(mode(prefix), '755', 'the prefix is traversable');
    // The admin makes the outputs directory (an outputs.under root is never made by a build).
    mkdirSync(join(prefix, 'outputs'), { mode: 0o755 });
    const r = run({ ...sb, registry }, 'mkdir -p "$OUT/bin" && cp /bin/echo "$OUT/bin/hello"', ['--output', out, '--env', `OUT=${out}`]);
    t.equal(r.status, 0, r.stderr);
    const ran = spawnSync(join(out, 'bin', 'hello'), ['handed over'], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
    t.equal(ran.error, undefined, 'nobody can execute it');
    t.equal(ran.stdout, 'handed over\n');
    t.same(leftovers(sb), []);
  });

  t.test('pool status as an unprivileged user: the lock directory stays root-only, and the refusal says why', async (t) => {
    const state = join(t.testdir(), 'pool');
    chmodSync(join(state, '..'), 0o755);
    ensureStateDir(state);
    writeFileSync(join(state, '40000'), '', { mode: 0o600 });
    // Without NODE_OPTIONS: the test runner hooks node children through it, and as nobody its hook cannot write its records.
    const argv = [process.execPath, CLI, 'pool', 'status', '--range', '40000:1:40000', '--state-dir', state];
    const r = spawnSync('/bin/sh', ['-c', 'exec env -u NODE_OPTIONS "$@"', 'sh', ...argv], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', env: { PATH: process.env.PATH } });
    t.equal(r.status, 1, r.stderr);
    t.equal(r.stderr, `stockade pool: the pool's lock directory ${state} is root-only (whoever could open a lock could hold a build UID); run this as root\n`);
  });
}
