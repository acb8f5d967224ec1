#!/usr/bin/env node
// Cost of checking policies. Cold: `stockade validate policies/*.yaml` as a user runs it, vs
// `node -e 0`, median of alternating runs, target ratio <= 1.3 (wall and CPU time as in
// bench/ffi.mjs; CPU is the steadier figure on a busy machine). Node loading the yaml parser
// alone (the one-file build Stockade loads) is shown as the floor. Warm: loadPolicy + plan of the
// shipped policies in a loop in this process, target >= 2000 policies/s.
// A second floor is Node loading the same parser and parsing the same files, as Stockade does
// (code cache, same options), and nothing else: no validation, no plan.
//
//   node bench/validate.mjs [--runs N] [--seconds S]
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { childrenCpu } from './cpu.mjs';

const root = new URL('../', import.meta.url);
const dist = new URL('dist/', root).href;

/** Wall and CPU milliseconds of one `node ARGS` run. */
function measure(args) {
  const cpuBefore = childrenCpu();
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${result.status ?? result.signal}`);
  return { wall: Number(process.hrtime.bigint() - start) / 1e6, cpu: (childrenCpu() - cpuBefore) * 1000 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { values } = parseArgs({ options: { runs: { type: 'string', default: '21' }, seconds: { type: 'string', default: '3' } } });
const runs = Number(values.runs);
const policies = readdirSync(new URL('policies/', root)).filter((f) => f.endsWith('.yaml')).sort().map((f) => `policies/${f}`);

// ---- cold: one CLI process ----
const PARSE_ONLY = `
import { readFileSync } from 'node:fs';
import { loadCompiled } from './dist/policy/compiled.js';
const yaml = loadCompiled(process.cwd() + '/dist/policy/yaml.generated.cjs');
for (const file of process.argv.slice(1)) {
  const document = yaml.parseDocument(readFileSync(file, 'utf8'), { lineCounter: new yaml.LineCounter(), prettyErrors: false, uniqueKeys: false, merge: false });
  if (document.errors.length) throw document.errors[0];
}`;
const cases = {
  'node -e 0': ['-e', '0'],
  'yaml loaded (floor)': ['-e', "require('./dist/policy/yaml.generated.cjs')"],
  'yaml parsing the policies (floor)': ['--input-type=module', '-e', PARSE_ONLY, ...policies],
  [`stockade validate (${policies.length} policies)`]: ['dist/cli/main.js', 'validate', ...policies],
};
const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
for (const args of Object.values(cases)) measure(args); // warm the page cache
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(cases)) samples[name].push(measure(args));
}
console.log(`cold validate, median of ${runs} alternating runs (wall ms / cpu ms / cpu ratio to node -e 0)`);
const base = median(samples['node -e 0'].map((m) => m.cpu));
for (const [name, ms] of Object.entries(samples)) {
  const wall = median(ms.map((m) => m.wall));
  const cpu = median(ms.map((m) => m.cpu));
  console.log(`  ${name.padEnd(34)} ${wall.toFixed(1).padStart(7)} ${cpu.toFixed(1).padStart(7)}   ${(cpu / base).toFixed(3)}`);
}
console.log('  target: stockade validate <= 1.3 x node -e 0');

// ---- warm: loadPolicy + plan in this process ----
const { loadPolicy } = await import(dist + 'policy/load.js');
const { plan } = await import(dist + 'plan/index.js');
const { DEFAULTS } = await import(dist + 'plan/defaults.js');
const files = policies.map((p) => fileURLToPath(new URL(p, root)));
const spec = { ...DEFAULTS.exampleSpec, args: [], env: {}, inputs: [], outputs: [] };
const once = () => {
  for (const file of files) {
    const loaded = loadPolicy(file);
    plan(loaded, spec);
  }
};
for (let i = 0; i < 50; i++) once(); // let the JIT settle
const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};
const rounds = [];
const deadline = Date.now() + Number(values.seconds) * 1000;
while (Date.now() < deadline) {
  const [start, cpuStart] = [process.hrtime.bigint(), cpuSeconds()];
  for (let i = 0; i < 20; i++) once();
  const done = 20 * files.length;
  rounds.push({ wall: done / (Number(process.hrtime.bigint() - start) / 1e9), cpu: done / (cpuSeconds() - cpuStart) });
}
console.log(`warm validate + plan of the shipped policies (with their extends), median of ${rounds.length} rounds`);
console.log(`  ${median(rounds.map((r) => r.wall)).toFixed(0)} policies/s (wall), ${median(rounds.map((r) => r.cpu)).toFixed(0)} per CPU second   target: >= 2000/s`);
