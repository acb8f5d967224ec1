#!/usr/bin/env node
// Cost of a remote action through `stockade runner`, per no-op action (/bin/true), its inits
// forked by zygotes (--warm 2) and each a fresh Node (--warm 0), against `stockade run` of the
// same builder under the same policy (a sandbox started from a shell) and
// against what Buildbarn's own runner does per action, a plain fork/exec (here spawnSync of
// /bin/true). Actions are sent one after another by a fake worker over the runner's socket;
// a runner's CPU is read from /proc (its own, its zygotes', and their reaped children's: every
// sandbox's init).
// The policy extends policies/remote-exec.yaml with its own numeric range pool and state dir
// in a temporary directory under /var/tmp, removed at the end. Needs root.
//
//   node bench/runner.mjs [--actions N]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { childrenCpu } from './cpu.mjs';

if (process.getuid?.() !== 0) {
  console.log('bench/runner.mjs: needs root (each action is a sandbox); skipped');
  process.exit(0);
}
const { values } = parseArgs({ options: { actions: { type: 'string', default: '20' } } });
const count = Number(values.actions);

const root = fileURLToPath(new URL('../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'));
const TICK_MS = 1000 / 100; // USER_HZ

/** CPU milliseconds of a process and its waited-for children, from /proc/PID/stat. */
function processCpu(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime stime cutime cstime are fields 14-17 of stat(5), 12-15 after pid and comm.
  return fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0) * TICK_MS;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync('/var/tmp/stockade-bench-runner-');
const runners = [];
try {
  const first = 2_000_000_000 + randomBytes(3).readUIntBE(0, 3) * 64;
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `stockade: 1\nname: bench-runner\nextends: ${join(root, 'policies/remote-exec.yaml')}\n` +
    `users:\n  range: { first: ${first}, count: 4, gid: ${first} }\n  state_dir: ${join(dir, 'state')}\nfilesystem:\n  build_dir_host: ${dir}\n`);
  const buildDirectory = join(dir, 'build');
  mkdirSync(buildDirectory);
  const definition = protoLoader.loadSync('buildbarn/runner/runner.proto', { includeDirs: [join(root, 'proto')], keepCase: true, longs: Number, defaults: true });
  const { Runner } = grpc.loadPackageDefinition(definition).buildbarn.runner;
  /** A runner on its own socket (same build directory and pool), with its zygotes' pids. */
  const startRunner = async (name, warm) => {
    const socket = join(dir, `${name}.sock`);
    const child = spawn(process.execPath, [cli, 'runner', '--socket', socket, '--build-directory', buildDirectory, '--policy', policy, '--warm', String(warm)], { env: { ...env, STOCKADE_BUILDS_DIR: join(dir, 'builds') }, stdio: ['ignore', 'ignore', 'pipe'] });
    runners.push(child);
    let log = '';
    child.stderr.on('data', (d) => (log += d));
    while (!log.includes('serving policy')) {
      if (child.exitCode !== null) throw new Error(`runner exited: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const zygotes = [...log.matchAll(/zygote pid (\d+) started/g)].map((m) => Number(m[1]));
    // The zygotes reap the inits they fork: their CPU is the runner's too.
    return { client: new Runner(`unix://${socket}`, grpc.credentials.createInsecure()), cpu: () => [child.pid, ...zygotes].reduce((sum, pid) => sum + processCpu(pid), 0) };
  };
  const warmRunner = await startRunner('warm', 2);
  const freshRunner = await startRunner('fresh', 0);
  let next = 0;
  const action = (runner) => {
    const id = `a${next++}`;
    for (const d of ['', 'root', 'tmp', 'logs']) mkdirSync(join(buildDirectory, id, d));
    const request = { arguments: ['/bin/true'], environment_variables: {}, input_root_directory: `${id}/root`, temporary_directory: `${id}/tmp`, server_logs_directory: `${id}/logs`, stdout_path: `${id}/stdout`, stderr_path: `${id}/stderr` };
    return new Promise((resolve, reject) => runner.client.Run(request, (err, res) => (err ? reject(err) : res.exit_code === 0 ? resolve(res) : reject(new Error(`exit ${res.exit_code}`)))));
  };
  const usageRoot = new protobuf.Root();
  usageRoot.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(root, 'proto', target));
  usageRoot.loadSync('buildbarn/resourceusage/resourceusage.proto', { keepCase: true });
  const Usage = usageRoot.lookupType('buildbarn.resourceusage.POSIXResourceUsage');
  /** user + system milliseconds the answer reports for the action. */
  const reportedCpu = (res) => {
    const u = Usage.toObject(Usage.decode(res.resource_usage[0].value), { longs: Number });
    const ms = (d) => (d ? d.seconds * 1000 + d.nanos / 1e6 : 0);
    return ms(u.user_time) + ms(u.system_time);
  };
  const reported = [];

  const viaRunner = { wall: [], cpu: [] };
  const viaFresh = { wall: [], cpu: [] };
  const viaRun = { wall: [], cpu: [] };
  const plain = { wall: [], cpu: [] };
  // Warm-up: the first action loads the runtime's modules in each runner.
  await action(warmRunner);
  await action(freshRunner);
  const timed = async (runner, into, report) => {
    const cpu = runner.cpu();
    const start = process.hrtime.bigint();
    const res = await action(runner);
    into.wall.push(Number(process.hrtime.bigint() - start) / 1e6);
    into.cpu.push(runner.cpu() - cpu);
    if (report) reported.push(reportedCpu(res));
  };
  for (let i = 0; i < count; i++) {
    await timed(warmRunner, viaRunner, true);
    await timed(freshRunner, viaFresh, false);

    let cpu = childrenCpu();
    let start = process.hrtime.bigint();
    const run = spawnSync(process.execPath, ['--single-threaded', cli, 'run', '--policy', policy, '--', '/bin/true'], { env: { ...env, STOCKADE_BUILDS_DIR: join(dir, 'builds') }, encoding: 'utf8' });
    viaRun.wall.push(Number(process.hrtime.bigint() - start) / 1e6);
    viaRun.cpu.push((childrenCpu() - cpu) * 1000);
    if (run.status !== 0) throw new Error(`stockade run exited ${run.status}: ${run.stderr}`);

    cpu = childrenCpu();
    start = process.hrtime.bigint();
    spawnSync('/bin/true');
    plain.wall.push(Number(process.hrtime.bigint() - start) / 1e6);
    plain.cpu.push((childrenCpu() - cpu) * 1000);
  }
  warmRunner.client.close();
  freshRunner.client.close();
  const row = (name, m) => `${name.padEnd(38)} wall ${median(m.wall).toFixed(1).padStart(7)} ms   CPU ${median(m.cpu).toFixed(1).padStart(7)} ms`;
  console.log(`per no-op action, median of ${count} (alternating; CPU of the runner and its zygotes from /proc in ${TICK_MS} ms ticks):`);
  console.log(row('stockade runner (zygote-forked init)', viaRunner));
  console.log(row('stockade runner --warm 0 (Node init)', viaFresh));
  console.log(row('stockade run (CLI, forked init)', viaRun));
  console.log(row('plain fork/exec (bb_runner-like)', plain));
  console.log(`CPU the answers report for /bin/true (the sandbox's set-up in the action's own process before its execve): ${median(reported).toFixed(1)} ms`);
  console.log(`ratios: runner/runner --warm 0 wall ${(median(viaRunner.wall) / median(viaFresh.wall)).toFixed(2)}, CPU ${(median(viaRunner.cpu) / median(viaFresh.cpu)).toFixed(2)}; runner/run wall ${(median(viaRunner.wall) / median(viaRun.wall)).toFixed(2)}, CPU ${(median(viaRunner.cpu) / median(viaRun.cpu)).toFixed(2)}; ` +
    `runner/fork-exec wall ${(median(viaRunner.wall) / median(plain.wall)).toFixed(1)}`);
} finally {
  for (const runner of runners) {
    if (runner.exitCode !== null) continue;
    const exited = new Promise((r) => runner.once('exit', r));
    runner.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
}
