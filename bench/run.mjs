#!/usr/bin/env node
// Cost of the sandbox. Needs root (it mounts, takes build users, sets up namespaces).
// 1. Cold start: `stockade run` of a no-op builder (/bin/true) vs `node -e 0`, target CPU ratio
//    <= 1.4 (its init forked from the run's own Node, run as the CLI's #! line runs it, with
//    --single-threaded), with its Plan from the plan cache (a hit) and with an empty cache (a
//    miss: the policy parsed, validated, planned and the entry written); the hit again with the
//    ES modules tsc made instead of the bundle (dist/cli/run.cjs, a copy of dist/ without it:
//    what the bundle saves); the hit without --single-threaded (a fresh Node init per build, the
//    fallback); for reference, `unshare -mpnui --fork true` and bubblewrap set up like guix's build
//    environment (namespaces, read-only inputs, /dev, /proc, /tmp, hostname). Median of
//    alternating runs, wall and CPU time (CPU of waited-for children, as in bench/ffi.mjs).
// 2. The example build (examples/hello, made several times over by one shell) inside Stockade vs
//    the same shell on the host, target <= 1.03. The shell times itself (wall clock, and its
//    children's CPU time from `times`), so Stockade's start-up is not part of this figure (it is
//    the first one). On a loaded host the CPU ratio is the meaningful one: the sandboxed build
//    sits in cgroups of its own and is scheduled differently from the host's shell.
// The policy extends policies/guix-default.yaml with its own numeric range pool and state dir
// in a temporary directory, removed at the end.
//
//   node bench/run.mjs [--runs N] [--builds N]
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { childrenCpu } from './cpu.mjs';

if (process.getuid?.() !== 0) {
  console.log('bench/run.mjs: needs root (stockade run mounts, takes build users and sets up namespaces); skipped');
  process.exit(0);
}

const root = fileURLToPath(new URL('../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
/** Node's arguments as the CLI's #! line gives them: `run` then forks its build's init. */
const stockade = [process.execPath, '--single-threaded', cli];

/** Without the caller's NODE_OPTIONS, which would also load into init. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'));

/** Wall and CPU milliseconds of one run of [command, ...args] (with `extraEnv`); its stdout is returned too. */
function measure([command, ...args], extraEnv = {}) {
  const cpuBefore = childrenCpu();
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { env: { ...env, ...extraEnv }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal}: ${result.stderr}`);
  return { wall, cpu: (childrenCpu() - cpuBefore) * 1000, stdout: result.stdout };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function ensureBubblewrap() {
  if (spawnSync('bwrap', ['--version']).status === 0) return;
  console.log('installing bubblewrap (apt-get) for the reference figure');
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'bubblewrap'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A policy extending guix-default with a pool of its own (random high UIDs, never shared). */
function makePolicy(dir) {
  const first = 2_000_000_000 + randomBytes(3).readUIntBE(0, 3) * 64;
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `stockade: 1\nname: bench-run\nextends: ${join(root, 'policies/guix-default.yaml')}\n` +
      `users:\n  range: { first: ${first}, count: 4, gid: ${first} }\n  state_dir: ${join(dir, 'state')}\n` +
      `filesystem:\n  inputs: { under: !append [${dir}] }\n  outputs: { under: !append [${dir}] }\n  build_dir_host: ${dir}\n`,
  );
  return policy;
}

const TOOL_INPUTS = ['/usr', '/bin', '/lib', '/lib64'];

/** A copy of the package whose dist/ lacks the run bundle: `stockade run` as tsc's ES modules. */
function withoutRunBundle(dir) {
  const copy = join(dir, 'es-modules');
  cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true, preserveTimestamps: true, filter: (path) => !path.includes('/dist/cli/run.cjs') });
  cpSync(join(root, 'package.json'), join(copy, 'package.json'));
  for (const name of ['node_modules', 'policies', 'schemas']) symlinkSync(join(root, name), join(copy, name));
  return join(copy, 'dist/cli/main.js');
}

function coldStart(dir, policy, runs) {
  const hitCache = join(dir, 'plan-cache-hit');
  const missCache = join(dir, 'plan-cache-miss');
  const runArgs = ['run', '--policy', policy, ...TOOL_INPUTS.flatMap((i) => ['--input', i]), '--', '/bin/true'];
  const bwrap = [
    'bwrap', '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup', '--hostname', 'localhost',
    ...TOOL_INPUTS.flatMap((p) => ['--ro-bind', p, p]),
    '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--dir', '/tmp/guix-build', '--chdir', '/tmp/guix-build',
    '--new-session', '--die-with-parent', '--clearenv', '--', '/bin/true',
  ];
  const hit = { STOCKADE_PLAN_CACHE_DIR: hitCache };
  // [command, its environment, what to do before each run]
  const cases = {
    'node -e 0': [[process.execPath, '-e', '0']],
    'stockade run, plan cache hit': [[...stockade, ...runArgs], hit],
    'same, plan cache miss': [[...stockade, ...runArgs], { STOCKADE_PLAN_CACHE_DIR: missCache }, () => rmSync(missCache, { recursive: true, force: true })],
    'hit, ES modules (no bundle)': [[process.execPath, '--single-threaded', withoutRunBundle(dir), ...runArgs], hit],
    'hit, fresh-Node init': [[process.execPath, cli, ...runArgs], hit],
    'unshare -mpnui --fork true': [['unshare', '-mpnui', '--fork', 'true']],
    'bwrap, guix-like': [bwrap],
  };
  const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  for (const [command, extraEnv, before] of Object.values(cases)) {
    before?.();
    measure(command, extraEnv); // warm the page cache (and the plan cache of the hits)
  }
  for (let i = 0; i < runs; i++) {
    for (const [name, [command, extraEnv, before]] of Object.entries(cases)) {
      before?.();
      samples[name].push(measure(command, extraEnv));
    }
  }
  console.log(`cold start, median of ${runs} alternating runs (wall ms / cpu ms / wall ratio / cpu ratio to node -e 0)`);
  const base = samples['node -e 0'];
  const [baseWall, baseCpu] = [median(base.map((m) => m.wall)), median(base.map((m) => m.cpu))];
  for (const [name, ms] of Object.entries(samples)) {
    const wall = median(ms.map((m) => m.wall));
    const cpu = median(ms.map((m) => m.cpu));
    const row = `${wall.toFixed(1).padStart(7)} ${cpu.toFixed(1).padStart(7)}   ${(wall / baseWall).toFixed(3)}   ${(cpu / baseCpu).toFixed(3)}`;
    console.log(`  ${name.padEnd(30)} ${row}`);
  }
  console.log('  target: stockade run (a plan cache hit) <= 1.4 x node -e 0 in CPU');
}

/** A shell that makes hello `builds` times from scratch, then prints the nanoseconds it took and `times`. */
function buildScript(src, out, builds) {
  const make = `/usr/bin/make -s -f ${src}/Makefile SRC=${src} out=${out}`;
  return `set -e; t0=$(date +%s%N); i=0; while [ $i -lt ${builds} ]; do rm -rf hello.o ${out}/bin; ${make} >/dev/null; i=$((i+1)); done; t1=$(date +%s%N); echo $((t1-t0)); times`;
}

function exampleBuild(dir, policy, runs, builds) {
  const src = join(dir, 'hello-src');
  cpSync(join(root, 'examples/hello'), src, { recursive: true });
  const host = [];
  const sandboxed = [];
  for (let i = 0; i <= runs; i++) {
    const hostDir = join(dir, `host-${i}`);
    mkdirSync(hostDir);
    const hostOut = join(hostDir, 'out');
    const onHost = spawnSync('/bin/sh', ['-c', buildScript(src, hostOut, builds)], { cwd: hostDir, env, encoding: 'utf8' });
    if (onHost.status !== 0) throw new Error(`host build failed: ${onHost.stderr}`);
    const out = join(dir, `out-${i}`);
    const inside = measure([
      ...stockade, 'run', '--policy', policy, '--name', 'hello', ...TOOL_INPUTS.flatMap((p) => ['--input', p]),
      '--input', src, '--output', out, '--env', 'PATH=/usr/bin:/bin', '--', '/bin/sh', '-c', buildScript(src, out, builds),
    ], { STOCKADE_PLAN_CACHE_DIR: join(dir, 'plan-cache-hit') });
    if (!existsSync(join(out, 'bin/hello'))) throw new Error('the sandboxed build made no hello');
    if (i === 0) continue; // warm-up: page cache, compiler
    host.push(shellTimes(onHost.stdout));
    sandboxed.push(shellTimes(inside.stdout));
  }
  console.log(`examples/hello made ${builds} times by one shell, median of ${runs} alternating runs (wall ms / cpu ms of the shell's children)`);
  const [hw, hc] = [median(host.map((m) => m.wall)), median(host.map((m) => m.cpu))];
  const [sw, sc] = [median(sandboxed.map((m) => m.wall)), median(sandboxed.map((m) => m.cpu))];
  console.log(`  on the host:     ${hw.toFixed(1).padStart(8)} ${hc.toFixed(1).padStart(8)}`);
  console.log(`  in Stockade:     ${sw.toFixed(1).padStart(8)} ${sc.toFixed(1).padStart(8)}`);
  console.log(`  ratio:           ${(sw / hw).toFixed(3).padStart(8)} ${(sc / hc).toFixed(3).padStart(8)}   target: <= 1.03`);
}

/** The build's wall time (from its first line) and its children's CPU time (from `times`' last line). */
function shellTimes(stdout) {
  const [ns, , children] = stdout.trim().split('\n');
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map(([, m, s]) => Number(m) * 60 + Number(s));
  if (seconds.length !== 2) throw new Error(`unexpected output of the build shell: ${stdout}`);
  return { wall: Number(ns) / 1e6, cpu: (seconds[0] + seconds[1]) * 1000 };
}

const { values } = parseArgs({ options: { runs: { type: 'string', default: '11' }, builds: { type: 'string', default: '5' } } });
ensureBubblewrap();
const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-run-'));
try {
  const policy = makePolicy(dir);
  coldStart(dir, policy, Number(values.runs));
  exampleBuild(dir, policy, Math.max(3, Math.floor(Number(values.runs) / 2)), Number(values.builds));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
