#!/usr/bin/env node
// Cost of output hand-over (copy through fds into a staging directory as fresh inodes,
// canonicalise, rename into place) on an output of 10,000 files, as a ratio against `cp -a`
// of the same tree, which copies as much and sets owner, modes and times too. Median of
// alternating runs. Needs root (the tree belongs to a build UID, the copy to root).
//
//   node bench/outputs.mjs [--runs N] [--files N]
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, files: { type: 'string', default: '10000' } } });
const runs = Number(values.runs);
const files = Number(values.files);
if (process.getuid() !== 0) {
  console.log('bench/outputs.mjs: skipped, needs root (the tree is owned by a build UID)');
  process.exit(0);
}
const dist = new URL('../dist/', import.meta.url).href;
const { handOver } = await import(dist + 'runtime/outputs.js');
const { DEFAULTS } = await import(dist + 'plan/defaults.js');
const { openRoot } = await import(dist + 'ffi/resolve.js');
const { close } = await import(dist + 'ffi/libc.js');

const BUILD_UID = 2_100_000_077; // no account: the tree only needs an owner that is not root
const work = mkdtempSync(join(tmpdir(), 'stk-bench-outputs-'));
try {
  // 100 directories of 100 files, 1 to 4 KiB each, a few executables and symlinks among them.
  const source = join(work, 'source');
  mkdirSync(source);
  const perDir = 100;
  for (let d = 0; d < Math.ceil(files / perDir); d++) {
    const dir = join(source, `d${d}`);
    mkdirSync(dir);
    for (let f = 0; f < perDir && d * perDir + f < files; f++) {
      const path = join(dir, `f${f}`);
      writeFileSync(path, Buffer.alloc(1024 * (1 + (f % 4)), f), { mode: f % 10 === 0 ? 0o755 : 0o644 });
      chownSync(path, BUILD_UID, BUILD_UID);
    }
    chownSync(dir, BUILD_UID, BUILD_UID);
  }
  chownSync(source, BUILD_UID, BUILD_UID);

  const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;
  const timeHandOver = async (i) => {
    const dest = join(work, `handed-${i}`);
    const start = process.hrtime.bigint();
    const workFd = openRoot(work);
    let report;
    try {
      report = await handOver([dest], { dirFd: workFd, beneath: ['source'] }, BUILD_UID, DEFAULTS.outputs, { outputsUnder: [work] });
    } finally {
      close(workFd);
    }
    const took = ms(start);
    if (report.outputs[0].files !== files) throw new Error(`handed over ${report.outputs[0].files} files, expected ${files}`);
    rmSync(dest, { recursive: true });
    return took;
  };
  const timeCp = (i) => {
    const dest = join(work, `cp-${i}`);
    const start = process.hrtime.bigint();
    const r = spawnSync('cp', ['-a', source, dest]);
    const took = ms(start);
    if (r.status !== 0) throw new Error(`cp -a failed: ${r.stderr}`);
    rmSync(dest, { recursive: true });
    return took;
  };

  await timeHandOver('warm');
  timeCp('warm');
  const handed = [];
  const copied = [];
  for (let i = 0; i < runs; i++) {
    handed.push(await timeHandOver(i));
    copied.push(timeCp(i));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const h = median(handed);
  const c = median(copied);
  console.log(`output hand-over of ${files} files, median of ${runs} alternating runs`);
  console.log(`  cp -a (reference)   ${c.toFixed(1)} ms`);
  console.log(`  hand-over           ${h.toFixed(1)} ms   ratio ${(h / c).toFixed(2)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
