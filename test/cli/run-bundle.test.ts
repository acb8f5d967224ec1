// `stockade run` runs dist/cli/run.cjs, run.ts and its imports in one CommonJS file made by
// `npm run build` (scripts/bundle-run.mjs). That builds work through it is what every runtime
// test running the CLI shows (e.g. sandbox.test.ts); here: it needs nothing but node builtins
// and koffi, and a bundle older than run.js (or none) is not used.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, ROOT } from '../helpers/child.js';

ensureBuilt();
const BUNDLE = join(ROOT, 'dist/cli/run.cjs');

t.test('the run bundle is one strict-mode file needing only node builtins and koffi', async (t) => {
  t.ok(existsSync(BUNDLE), `${BUNDLE} exists (npm run build)`);
  const source = readFileSync(BUNDLE, 'utf8');
  t.match(source, /^'use strict';\n/, "'use strict' first, where it is a directive");
  const required = [...source.matchAll(/\brequire\(\s*(["'])([^"']*)\1\s*\)/g)].map((m) => m[2]);
  t.same(required.filter((spec) => !spec.startsWith('node:')), [], 'require() loads only node: builtins');
  const madeRequires = [...source.matchAll(/createRequire\)?\([^)]*\)\)?\(\s*(["'])([^"']*)\1\s*\)/g)].map((m) => m[2]);
  t.same(madeRequires, ['koffi'], 'and koffi, through its CommonJS build');
  t.notMatch(source, /\bimport\(/, 'no dynamic import left');
  t.notMatch(source, /import\.meta/, 'no import.meta: each module is given its own file URL');
});

/** `stockade run --help` from a copy of dist/ in which `change` was made; its first line. */
function helpLine(change: (dist: string) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'stk-run-bundle-'));
  try {
    cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true, preserveTimestamps: true });
    cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    change(join(dir, 'dist'));
    const r = spawnSync(process.execPath, ['--single-threaded', join(dir, 'dist/cli/main.js'), 'run', '--help'], { encoding: 'utf8', env: {} });
    if (r.status !== 0) throw new Error(`run --help exited ${r.status}: ${r.stderr}`);
    return r.stdout.split('\n')[0]!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The bundle's help marked, so that what ran is visible; its mtime kept, as a build leaves it.
function markBundle(dist: string): void {
  const bundle = join(dist, 'cli/run.cjs');
  const { atime, mtime } = statSync(bundle);
  writeFileSync(bundle, readFileSync(bundle, 'utf8').replace('usage: stockade run', 'usage (bundled): stockade run'));
  utimesSync(bundle, atime, mtime);
}

t.test('a fresh bundle is what runs', async (t) => {
  t.match(helpLine(markBundle), /^usage \(bundled\): stockade run/);
});

t.test('a bundle older than run.js (tsc ran since) is not used: the ES modules run', async (t) => {
  t.match(helpLine((dist) => {
    markBundle(dist);
    utimesSync(join(dist, 'cli/run.js'), new Date(), new Date(Date.now() + 60_000));
  }), /^usage: stockade run/);
});

t.test('without the bundle the ES modules run', async (t) => {
  t.match(helpLine((dist) => rmSync(join(dist, 'cli/run.cjs'))), /^usage: stockade run/);
});
