#!/usr/bin/env node
// The build daemon's cost per build. Needs root (the daemon mounts, takes build users).
// 1. Latency: no-op builds (/bin/true) over one connection, submit to `finished`, p50 and p99;
//    against the median wall time of one cold bubblewrap sandbox set up like guix's build
//    environment (as in bench/run.mjs) and of one cold `stockade run`. Two series: back to back,
//    and isolated builds IDLE ms apart (an idle daemon). Target: isolated p50 <= 0.7 x bwrap.
// 2. Throughput: no-op builds from CLIENTS connections at once (--max-jobs JOBS), builds per
//    second, against guix-like bwrap sandboxes run two at a time on the same cores. Target:
//    >= 1.0 x bwrap. Measured for the daemon as it runs (inits forked by its zygotes) and with
//    --warm 0 (every init a fresh Node, the fallback), alternating. With it, the CPU each build
//    costs the daemon's own process (its one event loop) and its zygotes and inits, against the
//    CPU of one bwrap sandbox: what bounds throughput on a machine whose cores are all busy.
// The daemon runs from dist/ on a temporary socket and state dir, serving one policy that extends
// guix-default with a random high range pool; everything is removed at the end.
//
//   node bench/daemon.mjs [--builds N] [--runs N] [--clients N] [--jobs N] [--isolated N] [--idle MS]
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LineSplitter } from '../dist/runtime/lines.js';

if (process.getuid?.() !== 0) {
  console.log('bench/daemon.mjs: needs root (the daemon mounts, takes build users and sets up namespaces); skipped');
  process.exit(0);
}

const { values } = parseArgs({ options: {
  builds: { type: 'string', default: '300' }, runs: { type: 'string', default: '15' }, clients: { type: 'string', default: '8' }, jobs: { type: 'string', default: '4' },
  isolated: { type: 'string', default: '30' }, idle: { type: 'string', default: '500' },
} });
const [BUILDS, RUNS, CLIENTS, JOBS, ISOLATED, IDLE_MS] = [values.builds, values.runs, values.clients, values.jobs, values.isolated, values.idle].map(Number);
const root = fileURLToPath(new URL('../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'));
const TOOL_INPUTS = ['/usr', '/bin', '/lib', '/lib64'];
const SPEC = { name: 'noop', builder: '/bin/true', inputs: TOOL_INPUTS };

const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const median = (xs) => percentile(xs, 0.5);

function wallMs([command, ...args]) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} exited ${result.status ?? result.signal}: ${result.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

if (spawnSync('bwrap', ['--version']).status !== 0) {
  console.log('installing bubblewrap (apt-get) for the reference figure');
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'bubblewrap'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

const dir = mkdtempSync(join(tmpdir(), 'stk-bench-daemon-'));
const policies = join(dir, 'policies');
mkdirSync(policies);
const first = 2_000_000_000 + randomBytes(3).readUIntBE(0, 3) * 64;
const policyFile = join(policies, 'bench.yaml');
writeFileSync(policyFile,
  `stockade: 1\nname: bench-daemon\nextends: ${join(root, 'policies/guix-default.yaml')}\n` +
  `users:\n  range: { first: ${first}, count: ${JOBS}, gid: ${first} }\n  state_dir: ${join(dir, 'state')}\n` +
  `filesystem:\n  build_dir_host: ${dir}\n`);
const socket = join(dir, 'daemon.sock');
let daemon;

/** One connection; build() resolves with the submit-to-finished milliseconds. */
function open() {
  return new Promise((resolve, reject) => {
    const waiting = [];
    const events = new LineSplitter((line) => {
      const event = JSON.parse(line);
      if (event.type !== 'finished' && event.type !== 'error') return;
      const w = waiting.shift();
      if (event.type === 'error' || event.outcome !== 'succeeded') w.fail(new Error(`build failed: ${JSON.stringify(event)}`));
      else w.done(Number(process.hrtime.bigint() - w.start) / 1e6);
    });
    const s = connect(socket, () => resolve({
      build: () => new Promise((done, fail) => {
        waiting.push({ start: process.hrtime.bigint(), done, fail });
        s.write(JSON.stringify({ version: 1, type: 'build', policy: 'bench', spec: SPEC }) + '\n');
      }),
      close: () => s.destroy(),
    }));
    s.once('error', reject);
    s.setEncoding('utf8').on('data', (text) => events.push(text));
  });
}

const bwrap = [
  'bwrap', '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup', '--hostname', 'localhost',
  ...TOOL_INPUTS.flatMap((p) => ['--ro-bind', p, p]),
  '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--dir', '/tmp/guix-build', '--chdir', '/tmp/guix-build',
  '--new-session', '--die-with-parent', '--clearenv', '--', '/bin/true',
];

/** `count` bwrap sandboxes, `parallel` at a time: sandboxes per second, and CPU ms per sandbox. */
async function bwrapRate(count, parallel) {
  let next = 0;
  const cpuBefore = cpuMs(process.pid).reaped;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next++ < count) {
      await new Promise((resolve, reject) => {
        const child = spawn(bwrap[0], bwrap.slice(1), { env, stdio: 'ignore' });
        child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bwrap exited ${code}`))));
      });
    }
  }));
  return { rate: count / (Number(process.hrtime.bigint() - start) / 1e9), cpuMs: (cpuMs(process.pid).reaped - cpuBefore) / count };
}

async function startDaemon(extra) {
  const child = spawn(process.execPath, [cli, 'daemon', '--socket', socket, '--policies', policies, '--state-dir', join(dir, 'daemon-state'), '--max-jobs', String(JOBS), ...extra], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (t) => {
      log += t;
      if (log.includes('listening on ')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`daemon exited ${code}:\n${log}`)));
  });
  child.log = () => log;
  return child;
}

async function stopDaemon(child) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU ms of process `pid`: its own, and that of the children it has reaped. */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { own: (Number(fields[11]) + Number(fields[12])) * TICK_MS, reaped: (Number(fields[13]) + Number(fields[14])) * TICK_MS };
}

/** The daemon's own CPU (its event loop) and the rest: zygotes, the inits they reaped, fresh-Node inits and helpers it reaped. */
function daemonCpu(child) {
  const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  const own = cpuMs(child.pid);
  return { loop: own.own, rest: own.reaped + children.map(cpuMs).reduce((sum, c) => sum + c.own + c.reaped, 0) };
}

/** BUILDS no-op builds from CLIENTS connections: builds per second, and CPU ms per build. */
async function daemonRate(child) {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, open));
  let next = 0;
  const before = daemonCpu(child);
  const start = process.hrtime.bigint();
  await Promise.all(clients.map(async (client) => {
    while (next++ < BUILDS) await client.build();
  }));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const after = daemonCpu(child);
  clients.forEach((client) => client.close());
  return { rate: BUILDS / seconds, loopMs: (after.loop - before.loop) / BUILDS, restMs: (after.rest - before.rest) / BUILDS };
}

try {
  daemon = await startDaemon([]);
  const run = [process.execPath, cli, 'run', '--policy', policyFile, ...TOOL_INPUTS.flatMap((i) => ['--input', i]), '--', '/bin/true'];
  const c = await open();
  await c.build(); // the daemon's first build compiles its build path
  const samples = { bwrap: [], run: [], daemon: [], isolated: [] };
  // Alternating, so that load from elsewhere on the host falls on every case alike.
  for (let i = 0; i < RUNS; i++) {
    samples.bwrap.push(wallMs(bwrap));
    samples.run.push(wallMs(run));
    for (let j = 0; j < Math.ceil(BUILDS / RUNS); j++) samples.daemon.push(await c.build());
    for (let j = 0; j < Math.ceil(ISOLATED / RUNS); j++) {
      await new Promise((later) => setTimeout(later, IDLE_MS));
      samples.isolated.push(await c.build());
    }
  }
  c.close();
  const [bw, rn] = [median(samples.bwrap), median(samples.run)];
  console.log(`latency of one no-op build, ms (${RUNS} cold runs each of the references, medians)`);
  console.log(`  bwrap, guix-like, cold                        ${bw.toFixed(1).padStart(8)}`);
  console.log(`  stockade run, cold                            ${rn.toFixed(1).padStart(8)}`);
  for (const [name, series, target] of [['back to back', samples.daemon], [`isolated, ${IDLE_MS} ms apart`, samples.isolated, 0.7]]) {
    const [p50, p99] = [median(series), percentile(series, 0.99)];
    console.log(`  stockade daemon, ${`${name} (${series.length}),`.padEnd(28)} p50 / p99 ${p50.toFixed(1).padStart(6)} / ${p99.toFixed(1)}`);
    const goal = target === undefined ? '' : ` (target: <= ${target}${p50 <= target * bw ? '' : ', not met'})`;
    console.log(`    p50 / bwrap ${(p50 / bw).toFixed(2)}${goal}, p50 / stockade run ${(p50 / rn).toFixed(2)}`);
  }
  const forkedLine = daemon.log().match(/init pid \d+ \(forked by zygote pid \d+\)/g)?.length ?? 0;
  console.log(`  (${forkedLine} of the daemon's inits forked by its zygotes)`);

  // Throughput, alternating the daemon with zygotes, bwrap two at a time, and the daemon with fresh-Node inits.
  const rates = { zygote: [], bwrap: [], node: [] };
  for (let round = 0; round < 2; round++) {
    if (round > 0) daemon = await startDaemon([]);
    rates.zygote.push(await daemonRate(daemon));
    await stopDaemon(daemon);
    rates.bwrap.push(await bwrapRate(BUILDS, 2));
    daemon = await startDaemon(['--warm', '0']);
    rates.node.push(await daemonRate(daemon));
    await stopDaemon(daemon);
  }
  const best = (xs) => xs.reduce((a, b) => (b.rate > a.rate ? b : a));
  const [zy, br, nd] = [best(rates.zygote), best(rates.bwrap), best(rates.node)];
  console.log(`throughput: ${BUILDS} no-op builds from ${CLIENTS} connections, --max-jobs ${JOBS} (best of 2 rounds)`);
  console.log(`  bwrap, guix-like, two at a time               ${br.rate.toFixed(1).padStart(8)} sandboxes/s`);
  console.log(`  stockade daemon, zygotes                      ${zy.rate.toFixed(1).padStart(8)} builds/s   / bwrap ${(zy.rate / br.rate).toFixed(2)} (target: >= 1.0${zy.rate >= br.rate ? '' : ', not met'})`);
  console.log(`  stockade daemon, --warm 0 (fresh-Node inits)  ${nd.rate.toFixed(1).padStart(8)} builds/s   / bwrap ${(nd.rate / br.rate).toFixed(2)}`);
  console.log(`CPU per build, ms (same rounds): one bwrap sandbox ${br.cpuMs.toFixed(1)}`);
  for (const [name, r] of [['zygotes', zy], ['--warm 0', nd]]) {
    console.log(`  daemon, ${name.padEnd(9)} its event loop ${r.loopMs.toFixed(1).padStart(5)}, zygotes and inits ${r.restMs.toFixed(1).padStart(5)}   / bwrap ${((r.loopMs + r.restMs) / br.cpuMs).toFixed(2)}`);
  }
} finally {
  await stopDaemon(daemon);
  rmSync(dir, { recursive: true, force: true });
}
