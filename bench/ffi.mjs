#!/usr/bin/env node
// Start-up cost of init and the FFI layer vs `node -e 0`. Median of alternating runs.
// Target: 'init bundle + FFI loads' <= 1.15 x node -e 0. That row is what every build's init
// pays at start: the shipped bundle's code (dist/runtime/init.cjs, made by scripts/bundle-init.mjs)
// bundled here the same way with a first module that loads libc and libseccomp and calls through
// caps and Landlock, as init's set-up does; init then reads a request ("{}") and reports it cannot
// set up outside a PID namespace.
// Wall time and CPU time (user+system of the child, from getrusage(RUSAGE_CHILDREN)) are both
// shown: on a busy machine the CPU figure is the steadier one. The other lines separate the
// costs: an ES module importing only node:fs (Node's ES module loader), koffi imported alone (the
// floor: its native addon, loaded through koffi's CommonJS build as src/ffi/lib.ts does; Stockade
// cannot make it cheaper), koffi plus dlopen of libc, the FFI modules as ES modules with the same
// loads (the target's row before init was bundled), and init as tsc's ES modules vs the shipped
// bundle, both reaching the request before any lazy load (what bundling saves).
//
//   node bench/ffi.mjs [--runs N]
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundleLikeInit } from '../scripts/bundle-init.mjs';
import { childrenCpu } from './cpu.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = new URL('../dist/', import.meta.url).href;
const SETUP_FAILED = 125;

// Imports every module, then forces the lazy loads: libc, libseccomp, and one call through each.
const loadAll = `
const [libc, caps, net, landlock, seccomp, compile, oci] = await Promise.all(
  ['ffi/libc.js', 'ffi/caps.js', 'ffi/net.js', 'ffi/landlock.js', 'ffi/seccomp.js', 'seccomp/compile.js', 'seccomp/oci.js']
    .map((m) => import(${JSON.stringify(dist)} + m)));
libc.getresuid();
caps.clearAmbient();
landlock.landlockAbi();
seccomp.libseccomp();
`;

// init bundled with the FFI loads first, next to a request and koffi (for the bundle's require).
const work = mkdtempSync(join(tmpdir(), 'stockade-bench-ffi-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
writeFileSync(
  join(work, 'ffi-loads.mjs'),
  ['libc', 'caps', 'landlock', 'seccomp'].map((m) => `import * as ${m} from ${JSON.stringify(join(root, `dist/ffi/${m}.js`))};`).join('\n') +
    '\nlibc.getresuid();\ncaps.clearAmbient();\nlandlock.landlockAbi();\nseccomp.libseccomp();\n',
);
const initWithLoads = join(work, 'init-ffi.cjs');
await bundleLikeInit({
  stdin: { contents: `import './ffi-loads.mjs';\nimport ${JSON.stringify(join(root, 'dist/runtime/init.js'))};\n`, resolveDir: work, sourcefile: 'bench-entry.mjs' },
  outfile: initWithLoads,
});
const requestFile = join(work, 'request.json');
writeFileSync(requestFile, '{}');

/** Wall and CPU milliseconds of one `node ARGS` run; init's are given the request on fd 3 and a status pipe on fd 4. */
function measure({ args, init = false }) {
  // Opened for each run: a shared file offset would leave the next init nothing to read.
  const request = init ? openSync(requestFile, 'r') : undefined;
  const stdio = init ? ['inherit', 'inherit', 'inherit', request, 'pipe'] : 'inherit';
  const cpuBefore = childrenCpu();
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio, cwd: root });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  const cpu = (childrenCpu() - cpuBefore) * 1000;
  if (request !== undefined) closeSync(request);
  const expected = init ? SETUP_FAILED : 0;
  if (result.status !== expected) throw new Error(`node ${args.join(' ')} exited ${result.status ?? result.signal}, not ${expected}`);
  if (init && !String(result.output[4]).includes('not PID 1')) throw new Error(`node ${args.join(' ')} did not reach the request: ${result.output[4]}`);
  return { wall, cpu };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { values } = parseArgs({ options: { runs: { type: 'string', default: '21' } } });
const runs = Number(values.runs);
const TARGET = 'init bundle + FFI loads';
const cases = {
  'node -e 0': { args: ['-e', '0'] },
  'ES module, node:fs only': { args: ['--input-type=module', '-e', "await import('node:fs')"] },
  'koffi required (floor)': { args: ['-e', "require('koffi')"] },
  'koffi + libc loaded': { args: ['-e', "require('koffi').load('libc.so.6')"] },
  'node + FFI bindings': { args: ['--input-type=module', '-e', loadAll] },
  'init as ES modules': { args: [join(root, 'dist/runtime/init.js')], init: true },
  'init bundle (shipped)': { args: [join(root, 'dist/runtime/init.cjs')], init: true },
  [TARGET]: { args: [initWithLoads], init: true },
};
const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
for (const c of Object.values(cases)) measure(c); // warm the page cache
for (let i = 0; i < runs; i++) {
  for (const [name, c] of Object.entries(cases)) samples[name].push(measure(c));
}
console.log(`node start-up, median of ${runs} alternating runs (wall ms / cpu ms / cpu ratio to node -e 0)`);
const base = median(samples['node -e 0'].map((m) => m.cpu));
const ratios = {};
for (const [name, runs] of Object.entries(samples)) {
  const wall = median(runs.map((m) => m.wall));
  const cpu = median(runs.map((m) => m.cpu));
  ratios[name] = cpu / base;
  console.log(`  ${name.padEnd(26)} ${wall.toFixed(1).padStart(7)} ${cpu.toFixed(1).padStart(7)}   ${ratios[name].toFixed(3)}`);
}
console.log(`  target: ${TARGET} (what a build's init pays) <= 1.15 x node -e 0: ${ratios[TARGET] <= 1.15 ? 'met' : 'not met'}`);
