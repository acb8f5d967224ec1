// The conformance suite through the runner: the probe runs as a remote action (its input root,
// temporary directory and exact environment), under the same TAP IDs, and every probe check
// holds against the Plan the runner made for it.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import t from 'tap';
import { CLEAN_ENV, CLI, IS_ROOT, NOT_ROOT_REASON } from '../runtime/helpers.js';

t.test('stockade conformance --via-runner: every probe check passes under remote-exec, the others are skipped', { skip: IS_ROOT ? false : NOT_ROOT_REASON }, async (t) => {
  const first = 2_100_000_000 + randomBytes(3).readUIntBE(0, 3) * 64;
  const run = spawnSync(process.execPath, [CLI, 'conformance', '--policy', 'remote-exec', '--via-runner', '--pool-range', `${first}:4`], { encoding: 'utf8', env: CLEAN_ENV, timeout: 240_000 });
  const lines = run.stdout.split('\n');
  t.same(lines.filter((l) => l.startsWith('not ok')), [], run.stdout.slice(-3000) + run.stderr);
  t.equal(run.status, 0);
  const passed = lines.filter((l) => /^ok \d+ - remote-exec \S+ /.test(l) && !l.includes('# SKIP'));
  t.ok(passed.length >= 30, `${passed.length} probe checks passed through the runner`);
  t.ok(passed.some((l) => / ENV-01 /.test(l)) && passed.some((l) => / FS-10 /.test(l)), 'the environment and the mount table among them');
  t.ok(lines.some((l) => / GUIX-KILLUSER .*# SKIP through the runner/.test(l)), 'a check that starts builds of its own is skipped, saying why');
  t.same(readdirSync('/var/tmp').filter((n) => n.startsWith('stockade-conformance-runner-')), [], 'its build directory is removed');
});
