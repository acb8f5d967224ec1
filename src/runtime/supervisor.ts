// The supervisor: opens every bind source once (a missing input or one through a symlink is refused, exit 1),
// takes a pool UID, makes the build directory and cgroup, starts init as PID 1 of a fresh PID
// namespace (forked from this process, zygote.ts, or else a fresh Node) and hands it the opened
// sources, relays the log, enforces timeouts, and cleans up
// whatever happened, in reverse order of setup.
import { closeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { SyscallError } from '../ffi/errors.js';
import { acquire, reapUid, type Lease } from '../pool/index.js';
import type { Plan } from '../plan/types.js';
import { closeBuildDir, createBuildDir, keepTop, removeBuildDir, topFull, type BuildDir } from './builddir.js';
import { checkOutputsFree, handOver, OutputMissing, OutputRefused, secureKeptTree, type HandOverReport } from './outputs.js';
import { outputDirs } from '../plan/outputs.js';
import { admit, OutputClaimed, type BuildRecord } from './records.js';
import { addProcess, cpuTime, createCgroup, destroyCgroup, emptyCgroup, peakMemory, type BuildCgroup } from './cgroup.js';
import { supervisorMakesNetns } from './net.js';
import { SETUP_FAILED, type InitRequest } from './request.js';
import { startSlirp } from './slirp.js';
import { canFork, forkInit, ForkedInit } from './zygote.js';
import { InputRefused, openBindSources, openBuildDirSources } from './sources.js';
import { LineSplitter } from './lines.js';
import { BuilderRefused, checkBuilder, resolvePath } from './paths.js';
import { killTree, spawnInit, startForked, type InitForker, type InitProcess } from './start-init.js';
import { forkFilterLoaded } from './fork-filter.js';

const osSignals = osConstants.signals as Record<string, number>;

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
   * Fork init from this process (zygote.ts), where it can, rather than start a fresh Node: only for
   * a caller that does nothing else while it forks (`stockade run`), never a daemon's event loop.
   */
  forkInit?: boolean;
  /** Told once every process of the build user is reaped, while the user is still leased (the runner hands back its trees). */
  onEnded?: (uid: number) => Promise<void>;
  /**
   * What forks init instead (the daemon's zygote process, daemon/zygotes.ts). Not used for plans
   * whose network namespace the supervisor makes: those start a fresh Node init.
   */
  zygote?: InitForker;
  /** Told once the build has its user and init (again for each fork retried), just before init gets its request. */
  onStart?: (started: { uid: number; initPid: number; forked: boolean }) => void;
  /**
   * The build's record, admitted by the caller when it queued the build (the daemon); runBuild
   * owns it from here and releases it. Without one, runBuild admits the build itself.
   */
  record?: BuildRecord;
  /**
   * Directories the caller opened beneath a root of its own, by the name a `tree` bind source
   * gives (the runner binds an action's input root and temporary directory so). Not closed.
   */
  trees?: Readonly<Record<string, number>>;
  /** Checks the builder instead of checkBuilder (the runner checks argv[0] inside its action's own tree). */
  builderCheck?: (plan: Plan) => void;
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
  /** How the build's init started: forked (by the supervisor or a zygote), or a fresh Node. */
  init?: 'forked' | 'node';
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

/** What keeping a failed build's directory (--keep-failed) made. */
type Kept = Pick<RunResult, 'keptBuildDir' | 'keptTree' | 'keptOutputs'>;
/** Undoes one step of the set-up; says what it kept, if anything, for the result. */
type Cleanup = () => void | Kept | Promise<void | Kept>;

/** Runs one build under its Plan. Never leaves anything behind, whatever step fails. */
export async function runBuild(plan: Plan, options: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const cleanups: Cleanup[] = [];
  let lease: Lease | undefined;
  let result: RunResult | undefined;
  let dir: BuildDir | undefined;
  // Every host change below is noted in the record before (or, for the build directory, as soon
  // as) it is made, so the next admission can undo it if this process dies.
  let record = options.record;
  // Every process of the build descends from init, which is in the build's cgroup before it runs
  // as the build user, and cannot leave it: once the cgroup is empty, so is the build, and the
  // /proc scan after it (guix-daemon's killUser) is spared. Without a cgroup, the scan. The next
  // lease of the UID scans anyway, for whatever runs as it from outside any build.
  let cgroupEmptied = false;
  try {
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
    lease = await acquire(plan.identity, { build: plan.build.name, timeoutMs: options.poolTimeoutMs ?? 0, onWait: options.onNotice, onSkip: options.onNotice, signal: options.signal });
    const held = lease;
    cleanups.push(async () => {
      if (!cgroupEmptied) await reapUid(held.uid);
      try {
        await options.onEnded?.(held.uid);
      } finally {
        held.release();
      }
    });
    journal.noteUid(plan.identity.stateDir, lease.uid);
    // Again: waiting for a build user can take long.
    refusing(() => checkOutputsFree(plan.build.outputs, plan.build.outputsUnder), outputRefusal);
    dir = createBuildDir(plan.build.hostParent, plan.build.hostDirPrefix, lease.uid, lease.gid, outputDirs(plan.build.outputs).length, plan.limits.buildDirBytes);
    const buildDir = dir;
    cleanups.push(async () => {
      if (options.keepFailed && result && result.outcome !== 'succeeded') {
        if (!cgroupEmptied) await reapUid(held.uid);
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
        const dirs = outputDirs(plan.build.outputs);
        return {
          keptBuildDir: buildDir.path,
          keptTree: buildDir.top,
          keptOutputs: Object.fromEntries(plan.build.outputs.map((output) => [output, join(buildDir.outputDirs[dirs.indexOf(dirname(output))], basename(output))])),
        };
      }
      removeBuildDir(buildDir);
      return undefined;
    });
    journal.noteBuildDir(buildDir.path);
    // Named by the build user too, so whoever shares the machine can tell its own builds' cgroups.
    const cgroupId = `${plan.build.name}-${process.pid}-${started}-uid${lease.uid}`;
    journal.noteCgroup(cgroupId);
    const cgroup: BuildCgroup | null = createCgroup(cgroupId, plan.limits);
    if (cgroup) {
      cleanups.push(async () => {
        await destroyCgroup(cgroup);
        cgroupEmptied = true;
      });
    }

    openBuildDirSources(sources, plan, buildDir);
    const request: InitRequest = { plan, uid: lease.uid, gid: lease.gid, groups: lease.groups, newRoot: dir.newRoot, sources: sources.forInit(), cgroupProcs: cgroup?.dirs.map((dir) => join(dir, 'cgroup.procs')) ?? [] };
    // Before init starts its set-up: it does nothing for the build until told to.
    const adopt = (forked: boolean) => (pid: number) => {
      journal.noteInit(pid);
      options.onStart?.({ uid: held.uid, initPid: pid, forked });
    };
    // slirp4netns must attach to a network namespace made before init's set-up, which a fork
    // retried would have to make again: such plans keep the fresh-Node init.
    const forker: InitForker | undefined = supervisorMakesNetns(plan) ? undefined : options.zygote ?? (options.forkInit && canFork() ? { fork: forkInit } : undefined);
    const forked = forker ? await startForked(request, {
      forker,
      adopt: adopt(true),
      own: (child) => cleanups.push(() => killTree(child)),
      onNotice: options.onNotice,
      signal: options.signal,
    }) : undefined;
    let exit: Exit;
    if (forked) exit = await supervise(forked.child, plan, options, () => sources.close(), { setupError: forked.setupError });
    else {
      const { child, netns } = spawnInit(supervisorMakesNetns(plan));
      cleanups.push(() => killTree(child));
      if (netns !== undefined) cleanups.push(() => closeSync(netns));
      // A fresh Node's start-up is charged to the build's cgroup too (a memory limit too small for
      // it fails the build there, named); a forked init only joins it itself, at its first step.
      if (cgroup) addProcess(cgroup, child.pid!);
      adopt(false)(child.pid!);
      // The request is init's go: for slirp it is sent only once slirp4netns has configured the network.
      const slirp = netns === undefined ? undefined : await startSlirp(netns, plan.network, { onUnexpectedExit: options.onNotice });
      if (slirp) cleanups.push(() => slirp.stop());
      exit = await supervise(child, plan, options, () => sources.close(), { request: { ...request, inheritsForkFilter: forkFilterLoaded() } });
    }
    result = { ...outcomeOf(exit), init: forked ? 'forked' : 'node', uid: lease.uid, durationMs: Date.now() - started, peakMemoryBytes: peakMemory(cgroup), cpu: cpuTime(cgroup) };
    if (result.outcome === 'failed' && topFull(buildDir)) {
      result.message = [result.message, `limits.build_dir_bytes (${plan.limits.buildDirBytes} bytes) reached`].filter(Boolean).join('; ');
    }
    if (result.outcome === 'succeeded' && plan.build.outputs.length) {
      // init has exited, so its PID namespace is gone; nothing else of the build may touch its outputs.
      await (cgroup ? emptyCgroup(cgroup) : reapUid(lease.uid));
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
    const kept: Kept = {};
    for (const cleanup of cleanups.reverse()) {
      try {
        Object.assign(kept, await cleanup());
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
    if (result) Object.assign(result, kept);
    if (failures.length && result) {
      result.message = [result.message, `clean-up failed: ${failures.join('; ')}`].filter(Boolean).join('; ');
      if (result.outcome === 'succeeded') Object.assign(result, { outcome: 'setup-failed', exitCode: EXIT.setupFailed });
    }
  }
  return result!;
}
