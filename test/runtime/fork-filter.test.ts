// The fork filter (src/runtime/fork-filter.ts): V8 marks every heap mapping it makes
// MADV_DONTFORK, which would leave a forked child without the pages its parent mapped since; a
// process that loaded the filter forks children that have the whole heap, however it grew.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLEAN_ENV, IS_ROOT, NOT_ROOT_REASON, ROOT } from './helpers.js';

function grow(mode: 'filter' | 'none'): { marked: number; forks: number; survived: number; deaths: string[] } {
  const r = spawnSync(process.execPath, ['--single-threaded', join(ROOT, 'test/runtime/fork-filter.mjs'), mode], { encoding: 'utf8', env: CLEAN_ENV, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`fork-filter.mjs ${mode}: ${r.status ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('without the filter, V8 marks the heap MADV_DONTFORK and a forked child dies', async (t) => {
    const report = grow('none');
    t.ok(report.marked > 0, 'mappings marked');
    t.same(report.deaths, ['SIGSEGV'], 'the child forked lacked them');
  });

  t.test('with the filter, nothing is marked, and every child forked as the heap grows walks it whole', async (t) => {
    const report = grow('filter');
    t.equal(report.marked, 0, 'no mapping marked MADV_DONTFORK');
    t.equal(report.forks, 25);
    t.equal(report.survived, report.forks, `every child exited 0 (deaths: ${report.deaths.join(', ') || 'none'})`);
  });
}
