// The supervisor: opens every bind source once (a missing input or one through a symlink is refused, exit 1),
// takes a pool UID, makes the build directory and cgroup, starts init as PID 1 of a fresh PID
// namespace (forked from this process, zygote.ts, or else a fresh Node) and hands it the opened
// sources, relays the log, enforces timeouts, and cleans up
// whatever happened, in reverse order of setup.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLONE_FLAGS } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { setns, unshare } from '../ffi/libc.js';
import { acquire, reapUid, type Lease } from '../pool/index.js';
import type { Plan } from '../plan/types.js';
import { isUnder } from '../policy/semantics.js';
import { closeBuildDir, createBuildDir, keepTop, removeBuildDir, topFull, type BuildDir } from './builddir.js';
import { checkOutputsFree, handOver, OutputMissing, OutputRefused, secureKeptTree, type HandOverReport } from './outputs.js';
import { outputDirs } from '../plan/outputs.js';
import { admit, OutputClaimed, type BuildRecord } from './records.js';
import { addProcess, cpuTime, createCgroup, destroyCgroup, peakMemory, type BuildCgroup } from './cgroup.js';
import { supervisorMakesNetns } from './net.js';
import { READY_LINE, SETUP_FAILED, type InitRequest } from './request.js';
import { startSlirp } from './slirp.js';
import { canFork, forkInit, ForkedInit, FORK_ATTEMPTS, verify } from './zygote.js';
import { InputRefused, openBindSources, openBuildDirSources } from './sources.js';
import { LineSplitter } from './lines.js';

const osSignals = osConstants.signals as Record<string, number>;
// init.ts and its imports bundled into one CommonJS file by `npm run build` (scripts/bundle-init.mjs):
// Node's ES module loader, for its ~20 modules, was most of what init's start-up cost beyond node's own.
const INIT_PATH = fileURLToPath(new URL('./init.cjs', import.meta.url));
const INIT_MODULE_PATH = fileURLToPath(new URL('./init.js', import.meta.url));

/** Exit statuses of `stockade run` besides the builder's own. */
export const EXIT = { refused: 1, timeout: 124, setupFailed: SETUP_FAILED, signalBase: 128 } as const;

/** `refused`: the spec cannot be built as it is (a missing input, an input through a symlink, an output that exists or another build claims, a builder outside the inputs); nothing was started. */
export type Outcome = 'succeeded' | 'failed' | 'timeout' | 'silent-timeout' | 'setup-failed' | 'cancelled' | 'refused';

export interface RunOptions {
  /** Keep the build directory when the build fails (guix's --keep-failed). */
  keepFailed?: boolean;
  /**
   * Receives the builder's output as it comes. A promise returned stops reading the build's
   * output until it settles (a daemon client that does not read): the builder then blocks on
   * write, and the timeouts (max_silent included) still apply.
   */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void | Promise<void>;
  /** Receives Stockade's own notices (waiting for a build user, warnings). */
  onNotice?: (message: string) => void;
  /** How long to wait for a free build user. */
  poolTimeoutMs?: number;
  /** Aborting cancels the build: it is killed and cleaned up. */
  signal?: AbortSignal;
  /**
   * An init started ahead (startWarmInit), used instead of starting one; runBuild owns it from
   * here and kills it whatever happens. Not for plans whose network namespace the supervisor makes.
   */
  init?: WarmInit;
  /**
   * Fork init from this process (zygote.ts), where it can, rather than start a fresh Node: only for
   * a caller that does nothing else while it forks (`stockade run`), never a daemon's event loop.
   */
  forkInit?: boolean;
  /** Told once the build has its user and init (again for each fork retried), just before init gets its request. */
  onStart?: (started: { uid: number; initPid: number; warm: boolean; forked: boolean }) => void;
  /**
   * The build's record, admitted by the caller when it queued the build (the daemon); runBuild
   * owns it from here and releases it. Without one, runBuild admits the build itself.
   */
  record?: BuildRecord;
  /**
   * Directories the caller opened (O_PATH, beneath a root of its own), by the placeholder a
   * mount's source names: each is bound there instead of being opened by name. `{build_dir_host}`
   * among them replaces the fresh `top` (the runner binds an action's input root so). Not closed.
   */
  trees?: Readonly<Record<string, number>>;
  /** Checks the builder instead of checkBuilder (the runner checks argv[0] inside its action's own tree). */
  builderCheck?: (plan: Plan) => void;
}

/** init as PID 1 of a fresh PID namespace, blocked reading its request on fd 3; nothing else set up yet. */
export interface WarmInit {
  readonly child: ChildProcess;
  /** Whether its Node has started and it waits for its request (until then a build waits for it). */
  readonly ready: boolean;
}

export interface RunResult {
  outcome: Outcome;
  /** What `stockade run` exits with. */
  exitCode: number;
  /** The builder's exit status, or the signal that ended it. */
  status: number | null;
  termSignal: NodeJS.Signals | null;
  message?: string;
  uid?: number;
  /** Host path of the kept build directory (--keep-failed), made safe as outputs are. */
  keptBuildDir?: string;
  /** Host path of the kept build's tree: what the sandbox saw as its build directory. */
  keptTree?: string;
  /** Host paths of the kept build's partial outputs, by output path. */
  keptOutputs?: Record<string, string>;
  /** What handing the outputs over changed (succeeded builds). */
  handOver?: HandOverReport;
  durationMs: number;
  peakMemoryBytes?: number;
  /** CPU time of the build's cgroup, where the host counts it. */
  cpu?: { userUs: number; systemUs: number };
  /** How the build's init started: forked from the supervisor, a fresh Node, or a warm worker. */
  init?: 'forked' | 'node' | 'warm';
}

/** A builder the sandbox could not run as it is: the spec is refused before the build. */
export class BuilderRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuilderRefused';
  }
}

/** At most as many symlinks as the kernel follows in one lookup (MAXSYMLINKS). */
const MAX_BUILDER_LINKS = 40;

/**
 * guix's defence against CVE-2019-5736: the builder must resolve inside the build's inputs, and
 * so must every symlink on its way, or it would dangle in the sandbox (/usr/bin/awk ->
 * /etc/alternatives/awk with only /usr bound in). Directories are resolved as the host has them.
 */
export function checkBuilder(plan: Plan): void {
  const roots = [
    ...plan.build.inputs,
    ...plan.mounts.filter((m) => m.role === 'path' && m.readonly && m.source === m.target).map((m) => m.source),
  ].flatMap((p) => (existsSync(p) ? [realpathSync(p)] : []));
  const inputs = `the build's inputs (${plan.build.inputs.join(', ') || 'none'})`;
  const builder = plan.build.builder;
  let path = builder;
  let link: { from: string; to: string } | undefined;
  for (let hops = 0; ; hops++) {
    const via = link ? `, through the symlink ${link.from} -> ${link.to},` : '';
    let here: string;
    try {
      here = join(realpathSync(dirname(path)), basename(path));
    } catch {
      throw new BuilderRefused(link ? `builder ${builder}${via} dangles: ${path} does not exist on the host` : `builder ${builder}: no such file on the host`);
    }
    if (!roots.some((root) => isUnder(here, root))) {
      throw new BuilderRefused(link
        ? `builder ${builder} is a symlink${link.from === builder ? '' : ` chain through ${link.from}`} to ${link.to}, outside ${inputs}: it would dangle in the sandbox`
        : `builder ${builder} resolves to ${here}, outside ${inputs}`);
    }
    const st = lstatSync(here, { throwIfNoEntry: false });
    if (!st) throw new BuilderRefused(link ? `builder ${builder}${via} dangles: ${here} does not exist on the host` : `builder ${builder}: no such file on the host`);
    if (!st.isSymbolicLink()) return;
    if (hops >= MAX_BUILDER_LINKS) throw new BuilderRefused(`builder ${builder}: more than ${MAX_BUILDER_LINKS} symlinks on its way`);
    path = resolve(dirname(here), readlinkSync(here));
    link = { from: here, to: path };
  }
}

/** `path` with every symlink of its existing part resolved; the missing rest kept as written. */
export function resolvePath(path: string): string {
  let existing = path;
  // lstat: a dangling symlink counts as existing, so realpath refuses it rather than skipping it.
  while (!lexists(existing)) existing = dirname(existing);
  const rest = path.slice(existing.length).replace(/^\/+/, '');
  return rest ? join(realpathSync(existing), rest) : realpathSync(existing);
}


function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** tsc rewrites init.js and every module it imports: a bundle older than init.js lacks their changes. */
function checkInitBundle(): void {
  const bundle = statSync(INIT_PATH, { throwIfNoEntry: false });
  if (!bundle) throw new Error(`init bundle ${INIT_PATH} is missing: run \`npm run build\` (tsc alone does not make it)`);
  const compiled = statSync(INIT_MODULE_PATH, { throwIfNoEntry: false });
  if (compiled && compiled.mtimeMs > bundle.mtimeMs) throw new Error(`init bundle ${INIT_PATH} is older than ${INIT_MODULE_PATH}: run \`npm run build\``);
}

/**
 * Starts init as PID 1 of a fresh PID namespace, and for slirp in a fresh network namespace
 * whose fd it returns (slirp4netns attaches to it while init starts up). The supervisor's own
 * namespaces are restored at once.
 */
function spawnInit(newNet: boolean): { child: ChildProcess; netns?: number } {
  checkInitBundle();
  const own = { pid: openSync('/proc/thread-self/ns/pid', 'r'), net: newNet ? openSync('/proc/thread-self/ns/net', 'r') : undefined };
  try {
    unshare(CLONE_FLAGS.CLONE_NEWPID | (newNet ? CLONE_FLAGS.CLONE_NEWNET : 0));
    let netns: number | undefined;
    try {
      if (newNet) netns = openSync('/proc/thread-self/ns/net', 'r');
      return { child: spawn(process.execPath, [INIT_PATH], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], env: {}, cwd: '/' }), netns };
    } catch (err) {
      if (netns !== undefined) closeSync(netns);
      throw err;
    } finally {
      setns(own.pid, CLONE_FLAGS.CLONE_NEWPID);
      if (own.net !== undefined) setns(own.net, CLONE_FLAGS.CLONE_NEWNET);
    }
  } finally {
    closeSync(own.pid);
    if (own.net !== undefined) closeSync(own.net);
  }
}

/**
 * Starts an init ahead of any build. Until it reads a request it only holds its PID namespace:
 * SIGKILL leaves nothing behind, and if the supervisor dies it reads end-of-file and exits.
 * `onReady` is told once init says it waits for its request.
 */
export function startWarmInit(onReady?: () => void): WarmInit {
  const { child } = spawnInit(false);
  const worker = { child, ready: false };
  // Stays attached, ignoring what follows: the build's supervisor reads the status from then on.
  const status = new LineSplitter((line) => {
    if (worker.ready || line !== READY_LINE) return;
    worker.ready = true;
    onReady?.();
  });
  const statusStream = child.stdio[4] as NodeJS.ReadableStream;
  statusStream.setEncoding('utf8');
  statusStream.on('data', (text: string) => status.push(text));
  return worker;
}

/** init as the supervisor sees it, forked or spawned. */
type InitProcess = ChildProcess | ForkedInit;

function killTree(child: InitProcess): void {
  // SIGKILL to PID 1 of the build's namespace: the kernel then kills every process in it.
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  setupError?: string;
  ended?: 'timeout' | 'silent-timeout' | 'cancelled';
}

/**
 * `initDone` is called once init has exec'd the builder or exited (its status pipe closed). A
 * spawned init is sent `request`; a forked one is already past its set-up (verify), which
 * ended in `setupError` if it failed.
 */
function supervise(child: InitProcess, plan: Plan, options: RunOptions, initDone: () => void, start: { request: InitRequest } | { setupError?: string }): Promise<Exit> {
  return new Promise((resolve) => {
    let ended: Exit['ended'];
    let setupError = 'setupError' in start ? start.setupError : undefined;
    const stop = (why: NonNullable<Exit['ended']>) => {
      ended ??= why;
      killTree(child);
    };
    const total = plan.timeouts.totalSeconds > 0 ? setTimeout(() => stop('timeout'), plan.timeouts.totalSeconds * 1000) : undefined;
    let silent: NodeJS.Timeout | undefined;
    const armSilent = () => {
      if (plan.timeouts.maxSilentSeconds <= 0) return;
      clearTimeout(silent);
      silent = setTimeout(() => stop('silent-timeout'), plan.timeouts.maxSilentSeconds * 1000);
    };
    armSilent();
    const onAbort = () => stop('cancelled');
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort);

    // A build killed mid-write resets its output pipes; its exit status says what happened, so
    // a reset must not crash the supervisor (or a daemon running many builds).
    for (const stream of [child.stdout, child.stderr]) stream?.on('error', () => {});
    // Paused while any promise of onOutput is pending; never once init has exited, so the
    // pipes are read to their end and 'close' comes.
    let holds = 0;
    // A forked init may have exited already, while its set-up was verified.
    let exited = child.exitCode !== null || child.signalCode !== null;
    const flow = (resume: boolean) => {
      for (const stream of [child.stdout!, child.stderr!]) {
        if (resume) stream.resume();
        else stream.pause();
      }
    };
    child.once('exit', () => {
      exited = true;
      flow(true);
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream]!.on('data', (chunk: Buffer) => {
        armSilent();
        const hold = options.onOutput?.(stream, chunk);
        if (!(hold instanceof Promise) || exited) return;
        if (holds++ === 0) flow(false);
        const release = () => {
          if (--holds === 0 && !exited) flow(true);
        };
        hold.then(release, release);
      });
    }
    const status = new LineSplitter((line) => {
      let message: { error?: unknown; warning?: unknown };
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        // Fails closed: a status init did not write cannot be trusted to say the set-up went well.
        setupError ??= `unreadable status line from init: ${JSON.stringify(line.slice(0, 100))}`;
        return;
      }
      if (message?.error) setupError = String(message.error);
      if (message?.warning) options.onNotice?.(String(message.warning));
    });
    const closed = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(total);
      clearTimeout(silent);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal, setupError, ended });
    };
    if (child instanceof ForkedInit) child.onceClosed(closed);
    else child.on('close', closed);
    if (child instanceof ForkedInit || !('request' in start)) {
      initDone();
      return;
    }
    const statusStream = child.stdio[4] as NodeJS.ReadableStream;
    statusStream.setEncoding('utf8');
    statusStream.on('data', (text: string) => status.push(text));
    // Init can die before it reads its request (a memory limit too small for Node, say): the
    // socket then fails (EPIPE/ECONNRESET), and the build counts as not set up.
    const requestStream = child.stdio[3] as NodeJS.WritableStream;
    requestStream.on('error', (err: NodeJS.ErrnoException) => (setupError ??= `init ended before reading its request (${err.code ?? err.message})`));
    statusStream.on('error', () => {
      // Only if init died: its exit status tells the outcome.
    });
    // init's copy closes at execve (or its exit): from then on it has cloned every source.
    statusStream.once('close', initDone);
    requestStream.end(JSON.stringify(start.request));
  });
}

/**
 * init forked from this process (zygote.ts), verified up to its execve. A fork lost before it
 * could report is retried on a fresh one; undefined after FORK_ATTEMPTS (or if this process
 * cannot fork): the caller starts a fresh Node init instead.
 */
async function startForked(
  request: InitRequest,
  adopt: (pid: number, forked: boolean) => void,
  cleanups: (() => void | Promise<void>)[],
  options: RunOptions,
): Promise<{ child: ForkedInit; setupError?: string } | undefined> {
  for (let attempt = 1; attempt <= FORK_ATTEMPTS; attempt++) {
    let child: ForkedInit;
    try {
      child = forkInit(request);
    } catch (err) {
      options.onNotice?.(`init: cannot fork (${err instanceof Error ? err.message : String(err)}); starting a fresh Node init`);
      return undefined;
    }
    cleanups.push(() => killTree(child));
    adopt(child.pid, true);
    const verdict = await verify(child, options.onNotice, options.signal);
    // Cancelled: supervise() sees the signal aborted and reports the build so.
    if (verdict.kind === 'exec' || options.signal?.aborted) return { child };
    if (verdict.kind === 'setup-failed') return { child, setupError: verdict.error };
    const next = attempt < FORK_ATTEMPTS ? 'retrying on a fresh fork' : 'starting a fresh Node init';
    options.onNotice?.(`init: forked set-up ${attempt} of ${FORK_ATTEMPTS} lost (pid ${child.pid}: ${verdict.why}); ${next}`);
  }
  return undefined;
}

function outcomeOf(exit: Exit): Pick<RunResult, 'outcome' | 'exitCode' | 'status' | 'termSignal' | 'message'> {
  const base = { status: exit.code, termSignal: exit.signal };
  if (exit.ended === 'timeout') return { ...base, outcome: 'timeout', exitCode: EXIT.timeout, message: 'build timed out (timeouts.total)' };
  if (exit.ended === 'silent-timeout') return { ...base, outcome: 'silent-timeout', exitCode: EXIT.timeout, message: 'build silent for too long (timeouts.max_silent)' };
  if (exit.ended === 'cancelled') return { ...base, outcome: 'cancelled', exitCode: EXIT.signalBase + 15, message: 'build cancelled' };
  if (exit.setupError !== undefined) return { ...base, outcome: 'setup-failed', exitCode: EXIT.setupFailed, message: `sandbox setup failed: ${exit.setupError}` };
  if (exit.signal) {
    const number = osSignals[exit.signal] ?? 0;
    return { ...base, outcome: 'failed', exitCode: EXIT.signalBase + number, message: `builder killed by ${exit.signal}` };
  }
  return { ...base, outcome: exit.code === 0 ? 'succeeded' : 'failed', exitCode: exit.code ?? 1 };
}

/** The spec cannot be built as it is (its message names the field): outcome 'refused', exit 1. */
class Refusal extends Error {}

/** Runs `check`, turning an error `isRefusal` accepts into a Refusal. */
function refusing<T>(check: () => T, isRefusal: (err: unknown) => boolean): T {
  try {
    return check();
  } catch (err) {
    throw isRefusal(err) ? new Refusal(err instanceof Error ? err.message : String(err)) : err;
  }
}

/** checkOutputsFree fails a spec's output (a symlink on its way, existing already, no root) with anything but a failing system call. */
function outputRefusal(err: unknown): boolean {
  return err instanceof OutputRefused || (err instanceof Error && !(err instanceof SyscallError));
}

/** Runs one build under its Plan. Never leaves anything behind, whatever step fails. */
export async function runBuild(plan: Plan, options: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const cleanups: (() => void | Promise<void>)[] = [];
  let lease: Lease | undefined;
  let result: RunResult | undefined;
  let dir: BuildDir | undefined;
  const warm = options.init;
  // Ours from the start: a build that fails before using it must not leave it waiting.
  if (warm) cleanups.push(() => killTree(warm.child));
  // Every host change below is noted in the record before (or, for the build directory, as soon
  // as) it is made, so the next admission can undo it if this process dies.
  let record = options.record;
  try {
    if (warm && supervisorMakesNetns(plan)) throw new Error('a warm init has no network namespace of its own; this plan needs one made by the supervisor');
    // sources.ts names a missing input in a plain Error whose message starts with the field.
    const sources = refusing(() => openBindSources(plan, options.trees), (err) => err instanceof InputRefused);
    cleanups.push(() => sources.close());
    // Outputs are resolved beneath their root as the hand-over will: any symlink on the way refuses them.
    refusing(() => checkOutputsFree(plan.build.outputs, plan.build.outputsUnder), outputRefusal);
    refusing(() => (options.builderCheck ?? checkBuilder)(plan), (err) => err instanceof BuilderRefused);
    try {
      record ??= await admit(plan, plan.build.outputs.map(resolvePath), { onRemoved: options.onNotice });
    } catch (err) {
      throw err instanceof OutputClaimed ? new Refusal(err.message) : err;
    }
    const journal = record;
    lease = await acquire(plan.identity, { build: plan.build.name, timeoutMs: options.poolTimeoutMs ?? 0, onWait: options.onNotice, onSkip: options.onNotice });
    const held = lease;
    cleanups.push(async () => {
      await reapUid(held.uid);
      held.release();
    });
    journal.noteUid(plan.identity.stateDir, lease.uid);
    // Again: waiting for a build user can take long.
    refusing(() => checkOutputsFree(plan.build.outputs, plan.build.outputsUnder), outputRefusal);
    dir = createBuildDir(plan.build.hostParent, plan.build.hostName, lease.uid, lease.gid, outputDirs(plan.build.outputs).length, plan.limits.buildDirBytes);
    const buildDir = dir;
    cleanups.push(async () => {
      if (options.keepFailed && result && result.outcome !== 'succeeded') {
        await reapUid(held.uid);
        try {
          await keepTop(buildDir, held.uid, plan.outputs);
          secureKeptTree(buildDir.fd, buildDir.path, plan.outputs.owner);
          closeBuildDir(buildDir);
        } catch (err) {
          // A tree that cannot be made safe is not kept.
          removeBuildDir(buildDir);
          throw new Error(`build directory not kept, it could not be made safe: ${err instanceof Error ? err.message : String(err)}`);
        }
        journal.noteKept();
        result.keptBuildDir = buildDir.path;
        result.keptTree = buildDir.top;
        const dirs = outputDirs(plan.build.outputs);
        result.keptOutputs = Object.fromEntries(plan.build.outputs.map((output) => [output, join(buildDir.outputDirs[dirs.indexOf(dirname(output))], basename(output))]));
      } else removeBuildDir(buildDir);
    });
    journal.noteBuildDir(buildDir.path);
    // Named by the build user too, so whoever shares the machine can tell its own builds' cgroups.
    const cgroupId = `${plan.build.name}-${process.pid}-${started}-uid${lease.uid}`;
    journal.noteCgroup(cgroupId);
    const cgroup: BuildCgroup | null = createCgroup(cgroupId, plan.limits);
    if (cgroup) cleanups.push(() => destroyCgroup(cgroup));

    openBuildDirSources(sources, plan, buildDir, options.trees);
    const request: InitRequest = { plan, uid: lease.uid, gid: lease.gid, groups: lease.groups, chroot: dir.chroot, sources: sources.forInit() };
    // Before init starts its set-up: it does nothing for the build until told to.
    const adopt = (pid: number, forked: boolean) => {
      journal.noteInit(pid);
      if (cgroup) addProcess(cgroup, pid);
      options.onStart?.({ uid: held.uid, initPid: pid, warm: warm !== undefined, forked });
    };
    // slirp4netns must attach to a network namespace made before init's set-up, which a fork
    // retried would have to make again: such plans keep the fresh-Node init.
    const forked = options.forkInit && !warm && !supervisorMakesNetns(plan) && canFork() ? await startForked(request, adopt, cleanups, options) : undefined;
    let exit: Exit;
    if (forked) exit = await supervise(forked.child, plan, options, () => sources.close(), { setupError: forked.setupError });
    else {
      if (warm && (warm.child.exitCode !== null || warm.child.signalCode !== null)) throw new Error(`the warm init (pid ${warm.child.pid}) has exited`);
      const { child, netns } = warm ? { child: warm.child, netns: undefined } : spawnInit(supervisorMakesNetns(plan));
      cleanups.push(() => killTree(child));
      if (netns !== undefined) cleanups.push(() => closeSync(netns));
      adopt(child.pid!, false);
      // The request is init's go: for slirp it is sent only once slirp4netns has configured the network.
      const slirp = netns === undefined ? undefined : await startSlirp(netns, plan.network, { onUnexpectedExit: options.onNotice });
      if (slirp) cleanups.push(() => slirp.stop());
      exit = await supervise(child, plan, options, () => sources.close(), { request });
    }
    result = { ...outcomeOf(exit), init: forked ? 'forked' : warm ? 'warm' : 'node', uid: lease.uid, durationMs: Date.now() - started, peakMemoryBytes: peakMemory(cgroup), cpu: cpuTime(cgroup) };
    if (result.outcome === 'failed' && topFull(buildDir)) {
      result.message = [result.message, `limits.build_dir_bytes (${plan.limits.buildDirBytes} bytes) reached`].filter(Boolean).join('; ');
    }
    if (result.outcome === 'succeeded' && plan.build.outputs.length) {
      // init has exited, so its PID namespace is gone; nothing else of the build may touch its outputs.
      await reapUid(lease.uid);
      try {
        // Each output is the entry of its name in the directory it was made in.
        const dirs = outputDirs(plan.build.outputs);
        const from = plan.build.outputs.map((output) => ({ dir: buildDir.outputDirsBeneath[dirs.indexOf(dirname(output))], name: basename(output) }));
        result.handOver = await handOver(plan.build.outputs, { dirFd: buildDir.fd, from }, lease.uid, plan.outputs, {
          outputsUnder: plan.build.outputsUnder, maxBytes: plan.limits.outputBytes, journal, build: plan.build.name,
        });
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        const message = err instanceof OutputMissing ? why : `output hand-over ${err instanceof OutputRefused ? 'refused' : 'failed'}: ${why}`;
        Object.assign(result, { outcome: 'failed', exitCode: 1, message });
      }
    }
  } catch (err) {
    if (err instanceof Refusal) result = { outcome: 'refused', exitCode: EXIT.refused, status: null, termSignal: null, message: `refused: ${err.message}`, uid: lease?.uid, durationMs: Date.now() - started };
    else result = { outcome: 'setup-failed', exitCode: EXIT.setupFailed, status: null, termSignal: null, message: err instanceof Error ? err.message : String(err), uid: lease?.uid, durationMs: Date.now() - started };
  } finally {
    const failures: string[] = [];
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
      }
    }
    try {
      // A clean-up that failed leaves the record, its lock freed: the next admission retries it.
      record?.release(failures.length > 0);
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
    }
    if (failures.length && result) {
      result.message = [result.message, `clean-up failed: ${failures.join('; ')}`].filter(Boolean).join('; ');
      if (result.outcome === 'succeeded') Object.assign(result, { outcome: 'setup-failed', exitCode: EXIT.setupFailed });
    }
  }
  return result!;
}
