// Host side of a conformance run: turns a policy into the Plan of a probe build (node and the
// probe bound in read-only, the host toolchain as inputs), runs real builds with the runtime,
// and keeps the host fixtures the probe looks for (a /tmp marker, an abstract socket).
import { closeSync, existsSync, mkdirSync, mkdtempSync, readlinkSync, readdirSync, realpathSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { errnoName, SOCKET_TYPES, SYS } from '../ffi/arch.js';
import { rawSyscall } from './calls.js';
import { AF_VSOCK } from '../seccomp/policy-filter.js';
import { loadPolicy } from '../policy/load.js';
import { isUnder } from '../policy/semantics.js';
import { plan as planBuild } from '../plan/plan.js';
import type { Mount, Plan, PoolRef } from '../plan/types.js';
import { runBuild, type RunResult } from '../runtime/supervisor.js';
import { Zygote } from '../runtime/zygote-client.js';
import { KEYS_MARKER, PEER_MARKER, PROBE_MARKER, type KeysConfig, type KeysReport, type Observation, type PeerConfig, type PeerReport, type ProbeConfig } from './observation.js';
import { syscallProbes } from './syscalls.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where the probe's code is bound inside the sandbox. */
export const PROBE_DIR = '/stockade-probe';
/** The host's toolchain, bound read-only as the build's inputs: a shell, coreutils, node. */
export const TOOLCHAIN = ['/usr', '/bin', '/lib', '/lib64'];

export interface SubjectOptions {
  policiesDir?: string;
  /** Replaces the policy's pool with a numeric range (machines without the pool's accounts). */
  poolRange?: { first: number; count: number; gid: number };
}

/** Host facts the checks compare against (what the host looks like while the probe runs). */
export interface HostFacts {
  namespaces: Record<string, string>;
  tmpMarker: string;
  abstractSocket: string;
  pid: number;
  /** socket(AF_VSOCK) on the host: what a build whose policy opens vsock gets. */
  vsock: string;
}

/** One policy under test: the Plan of its probe build, and what was changed for the run. */
export interface Subject {
  name: string;
  file: string;
  plan: Plan;
  /** What the run changed from the policy's own Plan, for the report. */
  notes: string[];
  /** Why the policy's sandbox cannot be probed on this machine, if it cannot. */
  cannotRun?: string;
  host: HostFacts;
  /** A Plan of the same policy (and pool) for another spec: a shell script with these inputs and outputs. */
  replan(script: string, paths: { inputs?: string[]; outputs?: string[] }): Plan;
  dispose(): Promise<void>;
}

function probeMount(source: string, target: string, kind: 'dir' | 'file'): Mount {
  return { source: { kind: 'host', path: source }, target, type: 'bind', readonly: true, nosuid: true, nodev: true, noexec: false, kind, role: 'probe' };
}

/** koffi and its native module (an optional package per platform, @koromix/koffi-PLATFORM-ARCH). */
function koffiDirs(): string[] {
  const entry = createRequire(join(ROOT, 'package.json')).resolve('koffi');
  let dir = dirname(entry);
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  const native = join(dirname(dir), '@koromix', `koffi-${process.platform}-${process.arch}`);
  return existsSync(native) ? [dir, native] : [dir];
}

/** The wrapper records what only the first process can see, then execs node as the same PID 1. */
export function wrapper(): string {
  return [
    '/bin/ls /proc/$$/fd',
    '/bin/cat /proc/$$/environ > .probe-environ',
    '/bin/cat /proc/$$/limits > .probe-limits',
    '/bin/readlink /proc/$$/fd/0 > .probe-stdin',
    // cat's own status: the dispositions and mask the builder had, which fork and exec pass on.
    '/bin/cat /proc/self/status > .probe-status',
    `exec ${process.execPath} ${PROBE_DIR}/dist/conformance/probe.js "$0"`,
  ].join(' && ');
}

function hostVsock(): string {
  const { result, errno } = rawSyscall(SYS.socket, AF_VSOCK, SOCKET_TYPES.SOCK_STREAM, 0);
  if (result >= 0) closeSync(result);
  return result === -1 ? errnoName(errno) : 'ok';
}

function hostNamespaces(): Record<string, string> {
  return Object.fromEntries(readdirSync('/proc/self/ns').map((ns) => [ns, readlinkSync(`/proc/self/ns/${ns}`)]));
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
}

/** The probe's own list of paths and calls, derived from the Plan. */
export function probeConfig(plan: Plan, host: HostFacts): ProbeConfig {
  const inputs = plan.mounts.filter((m) => m.role === 'input').map((m) => m.target);
  const outputDirs = plan.mounts.filter((m) => m.role === 'outputs-dir').map((m) => m.target);
  return {
    exists: ['/home', '/root', '/etc/shadow', '/var', '/sys', '/boot', '/run', host.tmpMarker],
    writable: ['/', '/etc', ...inputs, '/tmp', plan.build.dir, ...outputDirs],
    makeOutputs: plan.build.outputs,
    writeOpen: ['/proc/self/comm'],
    syscalls: syscallProbes(plan),
    hostAbstractSocket: host.abstractSocket,
    hostPid: host.pid,
  };
}

export async function prepareSubject(file: string, options: SubjectOptions = {}): Promise<Subject> {
  const loaded = loadPolicy(file, { policiesDir: options.policiesDir });
  const policy = loaded.policy;
  const notes: string[] = [];
  const cleanups: (() => void | Promise<void>)[] = [];
  const token = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const host: HostFacts = { namespaces: hostNamespaces(), tmpMarker: `/tmp/stockade-conformance-marker-${token}`, abstractSocket: `stockade-conformance-${token}`, pid: process.pid, vsock: hostVsock() };
  const dispose = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };

  const allowedInputs = policy.filesystem?.inputs?.under ?? [];
  const inputs = TOOLCHAIN.filter((p) => existsSync(p));
  const refused = inputs.filter((p) => !allowedInputs.some((u) => isUnder(p, u)));
  const outputsUnder = policy.filesystem?.outputs?.under ?? [];
  const outputs: string[] = [];
  if (outputsUnder.length) {
    const prefix = outputsUnder.find((p) => existsSync(p)) ?? outputsUnder[0];
    if (!existsSync(prefix)) {
      mkdirSync(prefix, { recursive: true, mode: 0o755 });
      cleanups.push(() => rmdirSync(prefix));
    }
    outputs.push(join(prefix, `stockade-conformance-${token}`));
    cleanups.push(() => rmSync(outputs[0], { recursive: true, force: true }));
  }
  // Named by the run: another run on the machine (another checkout's) has build dirs and cgroups of its own.
  const spec = { name: `conformance-${token}`, builder: '/bin/sh', args: ['-c', wrapper()], env: {}, inputs: refused.length ? [] : inputs, outputs };
  const plan = planBuild(loaded, spec, { callerEnv: {}, specSource: 'the conformance probe' });
  plan.mounts.push(
    probeMount(join(ROOT, 'dist'), `${PROBE_DIR}/dist`, 'dir'),
    probeMount(join(ROOT, 'package.json'), `${PROBE_DIR}/package.json`, 'file'),
    // Resolved paths: node_modules may be a symlink (a git worktree sharing another checkout's).
    ...koffiDirs().map((dir) => probeMount(dir, `${PROBE_DIR}/node_modules/${relative(realpathSync(join(ROOT, 'node_modules')), dir)}`, 'dir')),
  );
  notes.push(`node (${process.execPath}) runs from the host toolchain bound read-only as inputs (${inputs.join(', ')}); Stockade's dist/ and koffi are bound read-only at ${PROBE_DIR}`);
  if (options.poolRange) {
    const state = mkdtempSync(join(tmpdir(), 'stockade-conformance-pool-'));
    cleanups.push(() => rmSync(state, { recursive: true, force: true }));
    const pool: PoolRef = { kind: 'range', ...options.poolRange };
    notes.push(`pool replaced by the range ${pool.first}..${pool.first + pool.count - 1} (gid ${pool.gid}) for this run`);
    plan.identity = { ...plan.identity, pool, stateDir: state };
  }

  writeFileSync(host.tmpMarker, 'a host /tmp file no build may see\n');
  cleanups.push(() => rmSync(host.tmpMarker, { force: true }));
  const server = createServer((socket) => socket.destroy());
  await listen(server, `\0${host.abstractSocket}`);
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));

  plan.build.args = ['-c', wrapper(), JSON.stringify(probeConfig(plan, host))];
  const replan = (script: string, paths: { inputs?: string[]; outputs?: string[] }): Plan => {
    const other = planBuild(loaded, { ...spec, args: ['-c', withTools(script)], inputs: [...spec.inputs, ...(paths.inputs ?? [])], outputs: paths.outputs ?? [] }, { callerEnv: {}, specSource: 'a conformance check' });
    other.identity = plan.identity;
    return other;
  };
  const cannotRun = refused.length ? `the policy does not allow the host toolchain (${refused.join(', ')}) as inputs, so the probe cannot run in its sandbox` : undefined;
  return { name: plan.policy.name, file, plan, notes, cannotRun, host, replan, dispose };
}

export interface BuildRun {
  result: RunResult;
  stdout: string;
  stderr: string;
}

/** Runs one real build under `plan` and collects its output. */
export interface RunOptions {
  signal?: AbortSignal;
  keepFailed?: boolean;
  /** Looks at what the build handed back, before the suite removes its outputs. */
  inspect?: (run: BuildRun) => void;
}

/** How the suite's builds start their init: forked from its process, by a zygote process (as the daemon's), or a fresh Node. */
export type InitStart = 'fork' | 'zygote' | 'node';
let initStart: { forkInit: boolean; zygote?: Zygote } = { forkInit: true };

/** Makes the suite's builds start their init so from now on; close() ends a zygote it started. */
export async function useInit(how: InitStart): Promise<{ close(): Promise<void> }> {
  const zygote = how === 'zygote' ? new Zygote((message) => process.stderr.write(`stockade conformance: ${message}\n`)) : undefined;
  if (zygote && !(await zygote.ready)) throw new Error(`the zygote (pid ${zygote.process.pid}) did not start`);
  initStart = { forkInit: how === 'fork', zygote };
  return { close: async () => void (await zygote?.close()) };
}

export async function runSandbox(plan: Plan, options: RunOptions = {}): Promise<BuildRun> {
  let stdout = '';
  let stderr = '';
  const result = await runBuild(plan, {
    // The suite's own process forks an init only while it waits for that build (when it can).
    ...initStart,
    signal: options.signal,
    keepFailed: options.keepFailed,
    onOutput: (stream, chunk) => {
      if (stream === 'stdout') stdout += chunk.toString();
      else stderr += chunk.toString();
    },
  });
  options.inspect?.({ result, stdout, stderr });
  // The probe's output directory is the suite's own: the next sandbox makes it anew.
  for (const output of plan.build.outputs) rmSync(output, { recursive: true, force: true });
  return { result, stdout, stderr };
}

/** Runs the probe in the subject's sandbox and returns its observation. */
export async function observe(subject: Subject, signal?: AbortSignal): Promise<Observation> {
  const run = await runSandbox(subject.plan, { signal });
  const lines = run.stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith(PROBE_MARKER));
  if (at < 0) {
    throw new Error(`the probe reported nothing (build ${run.result.outcome}, exit ${run.result.exitCode}${run.result.message ? `: ${run.result.message}` : ''})\n${run.stderr.trim()}`);
  }
  const observation = JSON.parse(lines[at].slice(PROBE_MARKER.length)) as Observation;
  observation.start.fds = lines.slice(0, at).filter(Boolean).map(Number).sort((a, b) => a - b);
  return observation;
}

/** A copy of the subject's probe Plan that runs the probe as one end of a socket between builds. */
export function peerPlan(subject: Subject, peer: PeerConfig): Plan {
  return scriptPlan(subject, wrapper(), (plan) => plan.build.args.push(JSON.stringify({ peer })));
}

/** A copy of the subject's probe Plan that runs the probe's keyring search (and plant). */
export function keysPlan(subject: Subject, keys: KeysConfig): Plan {
  return scriptPlan(subject, wrapper(), (plan) => plan.build.args.push(JSON.stringify({ keys })));
}

/** The keys report a keys build printed. */
export function keysReport(run: BuildRun): KeysReport {
  const line = run.stdout.split('\n').find((l) => l.startsWith(KEYS_MARKER));
  if (!line) throw new Error(`the keyring probe reported nothing (build ${run.result.outcome}, exit ${run.result.exitCode})\n${run.stderr.trim()}`);
  return JSON.parse(line.slice(KEYS_MARKER.length)) as KeysReport;
}

/** The peer report a peer build printed. */
export function peerReport(run: BuildRun): PeerReport {
  const line = run.stdout.split('\n').find((l) => l.startsWith(PEER_MARKER));
  if (!line) throw new Error(`the peer probe reported nothing (build ${run.result.outcome}, exit ${run.result.exitCode})\n${run.stderr.trim()}`);
  return JSON.parse(line.slice(PEER_MARKER.length)) as PeerReport;
}

/** The host toolchain on PATH (a guix build starts with /path-not-set), so a script's commands run rather than fail quietly. */
function withTools(script: string): string {
  return `PATH=/usr/bin:/bin; ${script}`;
}

/** A copy of the subject's Plan running a shell script with the probe's output, or none when the policy allows no outputs. */
export function probeOutputPlan(subject: Subject, script: string): Plan | undefined {
  if (!subject.plan.build.outputs.length) return undefined;
  const plan = structuredClone(subject.plan);
  plan.build.args = ['-c', withTools(script)];
  return plan;
}

/**
 * A copy of the subject's Plan running a shell script instead of the probe, without outputs
 * (the probe proved those), so several can run at once.
 */
export function scriptPlan(subject: Subject, script: string, change: (plan: Plan) => void = () => {}): Plan {
  const plan = structuredClone(subject.plan);
  const outputDirs = new Set(plan.mounts.filter((m) => m.role === 'outputs-dir').map((m) => m.target));
  plan.build.args = ['-c', withTools(script)];
  plan.build.outputs = [];
  plan.mounts = plan.mounts.filter((m) => m.role !== 'outputs-dir');
  if (plan.landlock) plan.landlock.paths = plan.landlock.paths.filter((p) => !outputDirs.has(p.path));
  change(plan);
  return plan;
}
