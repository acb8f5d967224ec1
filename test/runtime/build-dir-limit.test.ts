// limits.build_dir_bytes: the build's writable build dir cannot take more than that many bytes
// of the host: past it writes fail with ENOSPC, the failed build names the limit, and nothing
// (no mount) is left behind; --keep-failed still keeps the tree.
import t from 'tap';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, run } from './helpers.js';

const LIMIT = 1024 * 1024;
const FILL = `head -c ${2 * LIMIT} /dev/zero > big`;

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  const sb = makePolicy('guix-default', `limits: { build_dir_bytes: 1M }\n`);
  t.teardown(() => removeSandbox(sb));
  const runJson = (script: string, extra: string[] = []) => {
    const r = run(sb, script, ['--json', ...extra]);
    return { ...r, result: JSON.parse(r.stdout) };
  };

  t.test('writing past build_dir_bytes fails the build with the limit named, leaving no mount', async (t) => {
    const { status, stderr, result } = runJson(FILL);
    t.equal(status, 1);
    t.match(stderr, /No space left on device/);
    t.match(result, { outcome: 'failed', exitCode: 1, message: `limits.build_dir_bytes (${LIMIT} bytes) reached` });
    t.same(leftovers(sb), []);
  });

  t.test('under the limit the build runs as usual, its build dir a tmpfs', async (t) => {
    const { status, stdout, stderr, result } = runJson(`head -c ${LIMIT / 2} /dev/zero > half && stat -f -c %T . >&2`);
    t.equal(status, 0, stdout);
    t.equal(stderr, 'tmpfs\n');
    t.match(result, { outcome: 'succeeded', message: null });
    t.same(leftovers(sb), []);
  });

  t.test('a failure that is not the limit is not blamed on it', async (t) => {
    const { status, result } = runJson('echo small > file; exit 3');
    t.equal(status, 3);
    t.match(result, { outcome: 'failed', message: null });
  });

  t.test('--keep-failed: the tree survives the tmpfs, copied to the host and made safe, even opened up by the build', async (t) => {
    const { status, result } = runJson(`echo kept > note; chmod 0777 .; ${FILL}`, ['--keep-failed']);
    t.equal(status, 1);
    t.match(result, { outcome: 'failed', message: `limits.build_dir_bytes (${LIMIT} bytes) reached` });
    t.match(result.keptBuildDir, /\/guix-build-sh\.drv-\d+$/);
    t.equal(readFileSync(join(result.keptBuildDir, 'top', 'note'), 'utf8'), 'kept\n');
    t.ok(readFileSync(join(result.keptBuildDir, 'top', 'big')).length <= LIMIT, 'what the build wrote, up to the limit');
    t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(sb.dir), 'no mount left');
    rmSync(result.keptBuildDir, { recursive: true, force: true });
    t.same(leftovers(sb), []);
  });

  t.test('without the limit, the same write succeeds', async (t) => {
    const open = makePolicy('guix-default');
    t.teardown(() => removeSandbox(open));
    const r = run(open, FILL, ['--json']);
    t.equal(r.status, 0, r.stderr);
    t.same(leftovers(open), []);
  });
}
