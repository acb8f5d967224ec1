// The daemon's zygote: a process started with `node --single-threaded` that does nothing but fork
// builds' inits (src/daemon/zygotes.ts starts and talks to it). It never holds a build's Plan,
// request or client data: it is told only which of the daemon's pipes a child is to open
// (`/proc/DAEMON/fd/N`), and each child reads its own request from the daemon once forked. So a
// child holds nothing of any other build, and the zygote's memory has nothing of one to leak.
// It sits in a blocking poll(2) on its command pipe and its children's pidfds: it forks only
// while otherwise idle, on the thread that runs JavaScript, with no libuv work pending, and
// reports each child's pid and then its exit status to the daemon (only the parent can reap).
//
// Commands (stdin), one JSON line each:
//   {"fork": ID, "from": DAEMON_PID, "fds": {"stdout": N, "stderr": N, "status": N, "request": N}}
//   {"kill": PID, "signal": SIGNAL}
// Events (stdout): {"ready": true} once, {"forked": ID, "pid": PID} or {"refused": ID, "error": MESSAGE},
// {"exit": PID, "code": CODE, "signal": NAME}.
// End of file on stdin (the daemon is gone or closed it): every child is killed and reaped, then exit.
import { openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { ERRNO, FCNTL, OPEN_FLAGS, SIGNALS, WNOHANG } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { close, closeRange, dup3, exitNow, fcntl, kill, pidfdOpen, pollReadable, setParentDeathSignal, waitpid } from '../ffi/libc.js';
import { libseccomp } from '../ffi/seccomp.js';
import { READY_LINE, REQUEST_FD, SETUP_FAILED, STATUS_FD, type InitRequest } from './request.js';
import { setUp } from './setup.js';
import { resetSignals } from './signals.js';
import { keepMemoryForkable } from './fork-filter.js';
import { actOut, canFork, decodeWaitStatus, failedSetUp, forkChild, HIGH_FD, nextFault, type Fault } from './zygote.js';

/** Bounds a command line from the daemon (a fork command is under 200 bytes). */
const MAX_COMMAND_BYTES = 4096;

interface ForkCommand {
  fork: number;
  from: number;
  fds: { stdout: number; stderr: number; status: number; request: number };
}
interface KillCommand {
  kill: number;
  signal: number;
}

function emit(event: object): void {
  writeSync(1, JSON.stringify(event) + '\n');
}

/**
 * The forked child: opens the daemon's pipes, closes every other fd it inherited (the zygote's
 * command pipe, other children's pidfds, libuv's), says READY_LINE, reads its request to its end
 * and runs init's set-up. Never returns.
 */
function childMain(command: ForkCommand, fault: Fault | undefined): never {
  try {
    // Node's handlers would run the zygote's libuv code here; the set-up resets them again later.
    resetSignals();
    // Ends with the zygote until the set-up arms it again (a change of credentials clears it).
    setParentDeathSignal(SIGNALS.SIGKILL);
    actOut(fault);
    const proc = (fd: number) => `/proc/${command.from}/fd/${fd}`;
    const opened: [number, number][] = [
      [openSync('/dev/null', 'r'), 0],
      [openSync(proc(command.fds.stdout), 'w'), 1],
      [openSync(proc(command.fds.stderr), 'w'), 2],
      [openSync(proc(command.fds.request), 'r'), REQUEST_FD],
      [openSync(proc(command.fds.status), 'w'), STATUS_FD],
    ];
    const high = opened.map(([fd, target]) => [fcntl(fd, FCNTL.F_DUPFD_CLOEXEC, HIGH_FD), target] as const);
    for (const [fd, target] of high) dup3(fd, target, target === REQUEST_FD || target === STATUS_FD ? OPEN_FLAGS.O_CLOEXEC : 0);
    closeRange(STATUS_FD + 1);
  } catch {
    // Its pipes are not in place: nothing to report on; the daemon sees it end before READY_LINE.
    exitNow(SETUP_FAILED);
  }
  try {
    writeSync(STATUS_FD, READY_LINE + '\n');
    const request = JSON.parse(readFileSync(REQUEST_FD, 'utf8')) as InitRequest;
    return setUp(request);
  } catch (err) {
    return failedSetUp(err);
  }
}

/** Children not reaped yet: pidfd -> pid. */
const children = new Map<number, number>();

function forkOne(command: ForkCommand, fault: Fault | undefined): void {
  const pid = forkChild(() => childMain(command, fault));
  let pidfd: number;
  try {
    pidfd = pidfdOpen(pid);
  } catch (err) {
    // Without a pidfd its end would go unseen: it is not let start.
    kill(pid, SIGNALS.SIGKILL);
    waitpid(pid);
    throw err;
  }
  children.set(pidfd, pid);
  emit({ forked: command.fork, pid });
}

function handle(line: string): void {
  const command = JSON.parse(line) as Partial<ForkCommand & KillCommand>;
  if (typeof command.fork === 'number') {
    try {
      forkOne(command as ForkCommand, nextFault());
    } catch (err) {
      emit({ refused: command.fork, error: err instanceof Error ? err.message : String(err) });
    }
  } else if (typeof command.kill === 'number') {
    // Only a child not reaped yet: its pid cannot have been reused.
    if ([...children.values()].includes(command.kill)) kill(command.kill, command.signal ?? SIGNALS.SIGKILL);
  } else throw new Error(`zygote: unknown command ${line.slice(0, 100)}`);
}

function reap(pidfd: number): void {
  const pid = children.get(pidfd)!;
  const raw = waitpid(pid, WNOHANG);
  if (raw === undefined) return;
  children.delete(pidfd);
  close(pidfd);
  const { code, signal } = decodeWaitStatus(raw);
  emit({ exit: pid, code, signal });
}

function shutDown(): never {
  for (const pid of children.values()) kill(pid, SIGNALS.SIGKILL);
  for (const pid of children.values()) {
    try {
      waitpid(pid);
    } catch (err) {
      if (!(err instanceof SyscallError && err.errno === ERRNO.ECHILD)) throw err;
    }
  }
  return exitNow(0);
}

function main(): never {
  // Killed with the daemon, whatever way it ends; its children then die of the same signal.
  setParentDeathSignal(SIGNALS.SIGKILL);
  if (!canFork()) throw new Error('the zygote must run as root, on Linux, under node --single-threaded');
  // Loaded here, once, not in each child: dlopen in a forked child could wait on a loader lock.
  try {
    libseccomp();
  } catch {
    // No libseccomp: a plan with seccomp rules then fails its set-up, naming it.
  }
  // Before the first fork, not at it: a zygote that cannot fork whole children ends here, named.
  keepMemoryForkable();
  emit({ ready: true });
  const input = Buffer.alloc(MAX_COMMAND_BYTES);
  let pending = '';
  for (;;) {
    for (const fd of pollReadable([0, ...children.keys()])) {
      if (fd !== 0) {
        reap(fd);
        continue;
      }
      let count: number;
      try {
        count = readSync(0, input);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw err;
      }
      if (count === 0) shutDown();
      pending += input.toString('utf8', 0, count);
      if (pending.length > MAX_COMMAND_BYTES && !pending.includes('\n')) throw new Error('zygote: a command line longer than its bound');
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line) handle(line);
      }
    }
  }
}

try {
  main();
} catch (err) {
  process.stderr.write(`stockade zygote: ${err instanceof Error ? err.message : String(err)}\n`);
  shutDown();
}
