// The code cache of the generated bundles: a cache made from other source of the same length
// (which V8 itself would accept) must never run in place of the file.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const COMPILED = new URL('../../src/policy/compiled.ts', import.meta.url).href;

/** Loads FILE in a fresh process (as `stockade` would), optionally writing its code cache. */
function load(file: string, writeCache: boolean): string {
  const code = `const { loadCompiled, writeCodeCaches } = await import(${JSON.stringify(COMPILED)});
    process.stdout.write(String(loadCompiled(${JSON.stringify(file)})));
    if (${writeCache}) writeCodeCaches();`;
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

t.test('a cache made from other source of the same length is not used', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-compiled-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bundle.cjs');
  writeFileSync(file, "module.exports = 'one';\n");
  t.equal(load(file, true), 'one');
  t.equal(load(file, false), 'one', 'loads with its cache');
  writeFileSync(file, "module.exports = 'two';\n");
  t.equal(load(file, false), 'two', 'the changed file runs, not the cached code');
});
