#!/usr/bin/env node
// Start-up cost of the FFI layer: `node` importing every binding module and loading libc and
// libseccomp (what init pays) vs `node -e 0`. Median of alternating runs; target ratio <= 1.15.
// Wall time and CPU time (user+system of the child, from getrusage(RUSAGE_CHILDREN)) are both
// shown: on a busy machine the CPU figure is the steadier one. The lines in between separate the
// costs: an ES module importing only node:fs (Node's ES module loader), koffi imported alone (the
// floor: its native addon, loaded through koffi's CommonJS build as src/ffi/lib.ts does; Stockade
// cannot make it cheaper), and koffi plus dlopen of libc.
//
//   node bench/ffi.mjs [--runs N]
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { childrenCpu } from './cpu.mjs';

const dist = new URL('../dist/', import.meta.url).href;

// Imports every module, then forces the lazy loads: libc, libseccomp, and one call through each.
const loadAll = `
const [libc, caps, net, landlock, seccomp, compile, oci] = await Promise.all(
  ['ffi/libc.js', 'ffi/caps.js', 'ffi/net.js', 'ffi/landlock.js', 'ffi/seccomp.js', 'seccomp/compile.js', 'seccomp/oci.js']
    .map((m) => import(${JSON.stringify(dist)} + m)));
libc.getresuid();
caps.getCapabilities();
landlock.landlockAbi();
seccomp.libseccomp();
`;

/** Wall and CPU milliseconds of one `node ARGS` run. */
function measure(args) {
  const cpuBefore = childrenCpu();
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: new URL('..', import.meta.url) });
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${result.status ?? result.signal}`);
  return { wall: Number(process.hrtime.bigint() - start) / 1e6, cpu: (childrenCpu() - cpuBefore) * 1000 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { values } = parseArgs({ options: { runs: { type: 'string', default: '21' } } });
const runs = Number(values.runs);
const cases = {
  'node -e 0': ['-e', '0'],
  'ES module, node:fs only': ['--input-type=module', '-e', "await import('node:fs')"],
  'koffi required (floor)': ['-e', "require('koffi')"],
  'koffi + libc loaded': ['-e', "require('koffi').load('libc.so.6')"],
  'node + FFI bindings': ['--input-type=module', '-e', loadAll],
};
const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
measure(cases['node + FFI bindings']); // warm the page cache
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(cases)) samples[name].push(measure(args));
}
console.log(`node start-up, median of ${runs} alternating runs (wall ms / cpu ms / cpu ratio to node -e 0)`);
const base = median(samples['node -e 0'].map((m) => m.cpu));
for (const [name, runs] of Object.entries(samples)) {
  const wall = median(runs.map((m) => m.wall));
  const cpu = median(runs.map((m) => m.cpu));
  console.log(`  ${name.padEnd(26)} ${wall.toFixed(1).padStart(7)} ${cpu.toFixed(1).padStart(7)}   ${(cpu / base).toFixed(3)}`);
}
console.log('  target: node + FFI bindings <= 1.15 x node -e 0');
