// Grows its heap in steps, as a long-lived zygote's does, and reports on the mappings V8 marks
// MADV_DONTFORK. Started by fork-filter.test.ts with `node --single-threaded`:
//   node fork-filter.mjs filter   the fork filter loaded; a child forked after each step
//   node fork-filter.mjs none     no filter: one child forked (plain fork), at the last step
// Prints one JSON line: {"marked": N, "forks": N, "survived": N, "deaths": [SIGNAL…]}.
import { readFileSync } from 'node:fs';
import { exitNow, fork, waitpid } from '../../dist/ffi/libc.js';
import { keepMemoryForkable } from '../../dist/runtime/fork-filter.js';
import { decodeWaitStatus, forkChild } from '../../dist/runtime/zygote.js';

const STEPS = 25;
const mode = process.argv[2];
if (mode === 'filter') keepMemoryForkable();

const markedMappings = () => readFileSync('/proc/self/smaps', 'latin1').split('\n').filter((line) => line.startsWith('VmFlags:') && line.split(' ').includes('dc')).length;

// Kept: each step's objects stay alive, so the heap maps new pages at every step.
const kept = [];
const report = { marked: 0, forks: 0, survived: 0, deaths: [] };
for (let step = 0; step < STEPS; step++) {
  for (let i = 0; i < 20_000; i++) kept.push({ step, i, text: `entry ${step}.${i}` });
  report.marked = Math.max(report.marked, markedMappings());
  if (mode !== 'filter' && step < STEPS - 1) continue;
  report.forks++;
  const child = () => {
    // Reads every step's objects, and makes garbage enough to collect it.
    let sum = 0;
    for (const entry of kept) sum += entry.i;
    const garbage = Array.from({ length: 100_000 }, (_, i) => ({ i, text: `garbage ${i}` }));
    return exitNow(sum > 0 && garbage.length === 100_000 ? 0 : 1);
  };
  // Without the filter, a plain fork: forkChild would load it.
  const pid = mode === 'filter' ? forkChild(child) : fork();
  if (pid === 0) child();
  const { code, signal } = decodeWaitStatus(waitpid(pid));
  if (code === 0) report.survived++;
  else report.deaths.push(signal ?? `exit ${code}`);
}
process.stdout.write(JSON.stringify(report) + '\n');
