// The forked init: the supervisor's own process, which already has Node, koffi and libc loaded,
// forks through libc, and the child runs the same set-up as a fresh-Node init (setup.ts) and
// execve's the builder. One Node start-up per supervisor process instead of one per build.
//
// Node does not expect to be forked, so nothing here trusts the fork:
// - V8 marks its heap MADV_DONTFORK (a plain fork gives a child with no JS heap): before its
//   first fork the process loads a seccomp filter that makes that advice a no-op, then marks
//   MADV_DOFORK what V8 marked already (keepMemoryForkable). A child then has the whole heap
//   however it grew since; one that lacked a page would die at once (SIGSEGV), never silently.
// - Only a process started with --single-threaded forks: V8 then posts no work to its platform
//   threads, so none holds a lock the child (which has only the forking thread) would wait on.
// - Every fork is verified through an O_CLOEXEC status pipe: the child's last line before execve
//   is EXEC_LINE; an error line is a set-up failure (the build's own, as with a fresh init);
//   death or a pre-exec deadline without either is the fork's failure: the child is killed and
//   the build retried on a fresh fork, and after FORK_ATTEMPTS the caller falls back to a fresh
//   Node init. A child that wrote EXEC_LINE is never retried, so no build runs twice.
// - Each attempt has pipes of its own, so a dying child's noise never reaches the build's log.
// The child runs only synchronous code (koffi calls, writeSync): libuv's loop and threads are the
// parent's, and it never returns to them; every way out is execve or _exit.
import { EventEmitter } from 'node:events';
import { closeSync, openSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { CLONE_FLAGS, ERRNO, FCNTL, OPEN_FLAGS, WNOHANG } from '../ffi/arch.js';
import { libc } from '../ffi/lib.js';
import { dup3, exitNow, fcntl, fork, kill, pipe2, read, setns, unshare, waitpid } from '../ffi/libc.js';
import { SyscallError } from '../ffi/errors.js';
import { libseccomp } from '../ffi/seccomp.js';
import { vsockFilter } from '../seccomp/policy-filter.js';
import { keepMemoryForkable } from './fork-filter.js';
import { EXEC_LINE, READY_LINE, SETUP_FAILED, STATUS_FD, type InitRequest } from './request.js';
import { report, setUp } from './setup.js';
import { resetSignals } from './signals.js';
import { LineSplitter } from './lines.js';

/** Forks tried for one build before it falls back to a fresh Node init. */
export const FORK_ATTEMPTS = 3;
/** From fork to EXEC_LINE: a child past it is hung (V8's SIGSEGV handler can spin) and retried. */
const PRE_EXEC_DEADLINE_MS = 15_000;
/**
 * Fault injection for tests: `crash:N` makes this process's first N forked children die of
 * SIGSEGV before set-up, `hang:N` makes them wait forever, `…,deadline:MS` shortens the deadline.
 */
export const FAULT_VARIABLE = 'STOCKADE_TEST_FORK_FAULTS';
export type Fault = 'crash' | 'hang';
/** Above every fd a child places, so that placing one never overwrites another still to be placed. */
export const HIGH_FD = 10;

const signalNames = Object.fromEntries(Object.entries(osConstants.signals).map(([name, number]) => [number, name])) as Record<number, NodeJS.Signals>;

/** Whether this process may fork its inits (root, Linux, started with --single-threaded). */
export function canFork(): boolean {
  return process.platform === 'linux' && process.getuid?.() === 0 && process.execArgv.includes('--single-threaded');
}

export interface ReapedStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function decodeWaitStatus(status: number): ReapedStatus {
  const signal = status & 0x7f;
  return signal === 0 ? { code: (status >> 8) & 0xff, signal: null } : { code: null, signal: signalNames[signal] ?? 'SIGKILL' };
}

/** Forked inits not reaped yet, by pid. Node's own SIGCHLD handling waits only for the pids it spawned. */
const running = new Map<number, ForkedInit>();
let keepAlive: NodeJS.Timeout | undefined;

function reapRunning(): void {
  for (const [pid, child] of running) {
    let status: ReapedStatus;
    try {
      const raw = waitpid(pid, WNOHANG);
      if (raw === undefined) continue;
      status = decodeWaitStatus(raw);
    } catch (err) {
      // ECHILD: reaped by someone else; it has ended all the same, how is unknown.
      if (!(err instanceof SyscallError && err.errno === ERRNO.ECHILD)) throw err;
      status = { code: null, signal: null };
    }
    running.delete(pid);
    child.reaped(status);
  }
  if (running.size === 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = undefined;
  }
}

let listening = false;
function track(child: ForkedInit): void {
  if (!listening) {
    process.on('SIGCHLD', reapRunning);
    listening = true;
  }
  running.set(child.pid, child);
  // The signal listener does not keep the event loop alive, and a builder may close its output
  // long before it exits; also a backstop should a SIGCHLD be coalesced with one Node consumed.
  keepAlive ??= setInterval(reapRunning, 500);
}

/** What differs between an init forked here and one a zygote process forked (daemon/zygotes.ts). */
export interface InitControl {
  /** Lets the child start its set-up. */
  start(): void;
  /** Told once the child says it has opened its pipes (READY_LINE); a child that has not may die without closing its status pipe. */
  ready?(): void;
  /** Whether the status pipe ends when the child dies before it said READY_LINE. */
  readonly statusEndsAtDeath: boolean;
  signal(signal: number): void;
  /** Told once the child has been reaped. */
  reaped?(): void;
}

/**
 * A forked init, seen by the supervisor as a spawned one is: pid, stdout/stderr, kill, and
 * 'exit' then 'close' (after its output's end), with exitCode/signalCode set at 'exit'.
 */
export class ForkedInit extends EventEmitter {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private open = 2;
  private exited = false;
  /** 'close' was emitted: possibly before the supervisor listened (a builder with no output exits fast). */
  private closed = false;

  constructor(
    readonly pid: number,
    readonly stdout: Socket,
    readonly stderr: Socket,
    readonly status: Socket,
    readonly control: InitControl,
  ) {
    super();
    for (const stream of [stdout, stderr]) stream.once('close', () => --this.open === 0 && this.maybeClose());
  }

  /** Lets the child start its set-up (it waits for this, so that it can be put in the build's cgroup first). */
  start(): void {
    this.control.start();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): boolean {
    // Not reaped yet, so the pid is still this child's.
    if (this.exited) return false;
    this.control.signal(osConstants.signals[signal]);
    return true;
  }

  reaped(status: ReapedStatus): void {
    this.exited = true;
    this.exitCode = status.code;
    this.signalCode = status.signal;
    this.control.reaped?.();
    this.emit('exit', status.code, status.signal);
    this.maybeClose();
  }

  /** Calls `listener` once it has exited and its output has ended, at once if that is past already. */
  onceClosed(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    if (this.closed) listener(this.exitCode, this.signalCode);
    else this.once('close', listener);
  }

  private maybeClose(): void {
    if (!this.exited || this.open !== 0 || this.closed) return;
    this.closed = true;
    this.emit('close', this.exitCode, this.signalCode);
  }
}

let forksDone = 0;

const faultSpec = /^(crash|hang):(\d+)(?:,deadline:(\d+))?$/.exec(process.env[FAULT_VARIABLE] ?? '');
const preExecDeadlineMs = faultSpec?.[3] ? Number(faultSpec[3]) : PRE_EXEC_DEADLINE_MS;

/** The fault injected in this process's next forked child, if any (STOCKADE_TEST_FORK_FAULTS). */
export function nextFault(): Fault | undefined {
  const fork = forksDone++;
  return faultSpec && fork < Number(faultSpec[2]) ? (faultSpec[1] as Fault) : undefined;
}

/** Acts out `fault` in a forked child, before its set-up. */
export function actOut(fault: Fault | undefined): void {
  // A real memory fault: a signal sent to itself would be ignored by a PID 1 with no handler.
  if (fault === 'crash') libc().strlen(null);
  if (fault === 'hang') for (;;) libc().pause();
}

/** The forked child: never returns to the parent's event loop. */
function childMain(request: InitRequest, fds: { devNull: number; stdout: number; stderr: number; status: number; go: number }, fault: Fault | undefined): never {
  try {
    // Node's handlers would run the parent's libuv code here; the set-up resets them again later.
    resetSignals();
    actOut(fault);
    const high = Object.fromEntries(Object.entries(fds).map(([name, fd]) => [name, fcntl(fd, FCNTL.F_DUPFD_CLOEXEC, HIGH_FD)])) as typeof fds;
    dup3(high.status, STATUS_FD, OPEN_FLAGS.O_CLOEXEC);
    dup3(high.devNull, 0, 0);
    dup3(high.stdout, 1, 0);
    dup3(high.stderr, 2, 0);
    // 'g', or end of file if the supervisor gave up on this child.
    if (read(high.go, Buffer.alloc(1)) !== 1) exitNow(SETUP_FAILED);
    return setUp(request);
  } catch (err) {
    return failedSetUp(err);
  }
}

/** A forked child's way out of a set-up that threw: the reason on its status pipe, then SETUP_FAILED. */
export function failedSetUp(err: unknown): never {
  try {
    report({ error: err instanceof Error ? err.message : String(err) });
  } catch {
    // Nobody to tell: the supervisor sees the exit without EXEC_LINE.
  }
  return exitNow(SETUP_FAILED);
}

/**
 * Forks init as PID 1 of a fresh PID namespace, holding `request`; it waits for start().
 */
export function forkInit(request: InitRequest): ForkedInit {
  const pipes: number[] = [];
  try {
    const [stdoutRead, stdoutWrite] = pipe2(OPEN_FLAGS.O_CLOEXEC);
    pipes.push(stdoutRead, stdoutWrite);
    const [stderrRead, stderrWrite] = pipe2(OPEN_FLAGS.O_CLOEXEC);
    pipes.push(stderrRead, stderrWrite);
    const [statusRead, statusWrite] = pipe2(OPEN_FLAGS.O_CLOEXEC);
    pipes.push(statusRead, statusWrite);
    const [goRead, goWrite] = pipe2(OPEN_FLAGS.O_CLOEXEC);
    pipes.push(goRead, goWrite);
    const devNull = openSync('/dev/null', 'r');
    pipes.push(devNull);
    // Loaded here, once per process, not in each child: dlopen in a forked child could wait on a
    // loader lock another thread held at the fork.
    if (request.plan.seccomp || vsockFilter(request.plan.network)) libseccomp();
    const fault = nextFault();
    const pid = forkChild(() => childMain(request, { devNull, stdout: stdoutWrite, stderr: stderrWrite, status: statusWrite, go: goRead }, fault));
    for (const fd of [stdoutWrite, stderrWrite, statusWrite, goRead, devNull]) closeSync(fd);
    pipes.length = 0;
    let started = false;
    const child = new ForkedInit(pid, pipeReader(stdoutRead), pipeReader(stderrRead), pipeReader(statusRead), {
      statusEndsAtDeath: true,
      start() {
        started = true;
        try {
          writeSync(goWrite, 'g');
        } catch (err) {
          // EPIPE: it has died already, which its status pipe will tell.
          if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
        } finally {
          closeSync(goWrite);
        }
      },
      signal: (signal) => kill(pid, signal),
      // Never told to start (the supervisor failed before): the go pipe is closed here.
      reaped: () => started || closeSync(goWrite),
    });
    track(child);
    return child;
  } finally {
    for (const fd of pipes) closeSync(fd);
  }
}

/**
 * Forks this process, the child PID 1 of a fresh PID namespace running `child` (which never
 * returns); the parent's own PID namespace is kept.
 */
export function forkChild(child: () => never): number {
  keepMemoryForkable();
  const own = openSync('/proc/thread-self/ns/pid', 'r');
  try {
    unshare(CLONE_FLAGS.CLONE_NEWPID);
    try {
      const pid = fork();
      if (pid === 0) child();
      return pid;
    } finally {
      // The child never gets here.
      setns(own, CLONE_FLAGS.CLONE_NEWPID);
    }
  } finally {
    closeSync(own);
  }
}

function pipeReader(fd: number): Socket {
  return new Socket({ fd, readable: true, writable: false });
}

/** How a forked child's set-up ended. */
export type ForkVerdict =
  | { kind: 'exec' }
  | { kind: 'setup-failed'; error: string }
  /** Died or hung before it could report: the fork's failure, not the build's. */
  | { kind: 'lost'; why: string };

/**
 * Starts the child and waits until its status pipe says how its set-up ended; a child lost is
 * killed and reaped. Warnings go to `onNotice` as they come.
 */
export function verify(child: ForkedInit, onNotice?: (message: string) => void, signal?: AbortSignal): Promise<ForkVerdict> {
  return new Promise((resolve) => {
    let execLine = false;
    let ready = false;
    let ended = false;
    let error: string | undefined;
    const lines = new LineSplitter((line) => {
      if (line === EXEC_LINE) {
        execLine = true;
        return;
      }
      if (line === READY_LINE) {
        ready = true;
        child.control.ready?.();
        return;
      }
      let message: { error?: unknown; warning?: unknown };
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        error ??= `unreadable status line from init: ${JSON.stringify(line.slice(0, 100))}`;
        return;
      }
      if (message?.error) error = String(message.error);
      if (message?.warning) onNotice?.(String(message.warning));
    });
    const lose = (why: string) => {
      child.kill();
      // Nothing of a lost child reaches the build's log.
      child.stdout.destroy();
      child.stderr.destroy();
      child.status.destroy();
      const done = () => resolve({ kind: 'lost', why });
      if (child.exitCode !== null || child.signalCode !== null) done();
      else child.once('exit', done);
    };
    // Cancelled: killed at once, not at the deadline; its end then comes as any other's.
    const cancel = () => child.kill();
    if (signal?.aborted) cancel();
    signal?.addEventListener('abort', cancel);
    const deadline = setTimeout(() => {
      ended = true;
      signal?.removeEventListener('abort', cancel);
      child.status.destroy();
      lose(`no word from it within ${preExecDeadlineMs / 1000} s`);
    }, preExecDeadlineMs);
    child.status.setEncoding('utf8');
    child.status.on('data', (text: string) => lines.push(text));
    child.status.on('error', () => {});
    // A child that dies before it opened its pipes leaves the status pipe open: its parent holds it.
    if (!child.control.statusEndsAtDeath) {
      child.once('exit', () => {
        if (ended || ready) return;
        ended = true;
        clearTimeout(deadline);
        signal?.removeEventListener('abort', cancel);
        lose(`it ended (${child.signalCode ?? child.exitCode}) before it opened its pipes`);
      });
    }
    child.status.once('end', () => {
      if (ended) return;
      ended = true;
      clearTimeout(deadline);
      signal?.removeEventListener('abort', cancel);
      if (error !== undefined) resolve({ kind: 'setup-failed', error });
      else if (execLine) resolve({ kind: 'exec' });
      else {
        const describe = () => `it ended (${child.signalCode ?? child.exitCode}) before set-up`;
        if (child.exitCode !== null || child.signalCode !== null) lose(describe());
        else child.once('exit', () => lose(describe()));
      }
    });
    child.start();
  });
}
