// --keep-failed tells where a failed build's tree and its partial outputs are, each output
// named by its path; --json gives the same places.
import t from 'tap';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, run } from './helpers.js';

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  const SCRIPT = 'echo tree > in-tree; mkdir "$OUT"; echo partial > "$OUT/partial"; exit 3';

  t.test('the notes name the tree and each partial output by its output path', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, SCRIPT, ['--keep-failed', '--output', out, '--env', `OUT=${out}`]);
    t.equal(r.status, 3);
    const kept = /note: keeping build directory '([^']+)'/.exec(r.stderr)?.[1];
    const tree = /note: its tree \(\/tmp\/guix-build-sh\.drv-0 in the sandbox\) is '([^']+)'/.exec(r.stderr)?.[1];
    const partial = new RegExp(`note: partial output ${out} is '([^']+)'`).exec(r.stderr)?.[1];
    t.ok(kept && tree && partial, r.stderr);
    t.equal(readFileSync(join(tree!, 'in-tree'), 'utf8'), 'tree\n', 'the tree is where the note says');
    t.equal(readFileSync(join(partial!, 'partial'), 'utf8'), 'partial\n', 'the partial output is where the note says');
    rmSync(kept!, { recursive: true, force: true });
    t.same(leftovers(sb), []);
  });

  t.test('--json: keptTree and keptOutputs by output path', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, SCRIPT, ['--json', '--keep-failed', '--output', out, '--env', `OUT=${out}`]);
    const result = JSON.parse(r.stdout);
    t.equal(readFileSync(join(result.keptTree, 'in-tree'), 'utf8'), 'tree\n');
    t.same(Object.keys(result.keptOutputs), [out]);
    t.equal(readFileSync(join(result.keptOutputs[out], 'partial'), 'utf8'), 'partial\n');
    rmSync(result.keptBuildDir, { recursive: true, force: true });
  });
}
