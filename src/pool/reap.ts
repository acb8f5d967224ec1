// Kills whatever still runs under a build UID (leftovers of a crashed or escaped build) and
// proves, through /proc, that nothing remains. guix-daemon's killUser does the same before,
// after and on cancel of every build. Here every lease starts with it; after a build, emptying
// the build's cgroup replaces it where there is one (supervisor.ts).
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_ID, PoolError } from './rules.js';

/**
 * kill(-1) run as the UID, through setpriv (util-linux) because Node's spawn takes only int32
 * uids and range pools may go up to 2^32-2. The group does not matter to kill(2): nogroup.
 * procps kill needs `--` before -1, or it reads -1 as an option.
 */
const KILL_AS = (uid: number): string[] => [
  '/usr/bin/setpriv', `--reuid=${uid}`, '--regid=65534', '--clear-groups', '/bin/kill', '-9', '--', '-1',
];
/** SIGKILLed processes need a moment to leave; one stuck in D state longer than this is reported. */
const REAP_DEADLINE_MS = 3000;

/**
 * PIDs of processes (thread groups) where any task has `uid` as real, effective, saved or
 * filesystem uid. Zombies are left out: they run nothing and only wait for their parent.
 *
 * The threads of a live process are not read one by one: a thread gets credentials other than
 * its process's only through a raw per-thread setresuid, which needs CAP_SETUID, and nothing a
 * build starts has it (a build user's process can only switch among the build user's ids). A
 * process whose main thread has exited goes on in its other threads, though: those are read.
 * Reading every thread of every process made each scan five times dearer on a machine running
 * Node processes (a dozen threads each), twice per build.
 */
export function processesOf(uid: number): number[] {
  return numericEntries('/proc').filter((pid) => {
    const leader = readStatus(`/proc/${pid}/status`);
    if (!leader) return false;
    if (runsAs(leader, uid)) return true;
    if (leader.threads === 1 || !ended(leader)) return false;
    return numericEntries(`/proc/${pid}/task`).some((tid) => {
      const task = tid === pid ? null : readStatus(`/proc/${pid}/task/${tid}/status`);
      return task !== null && runsAs(task, uid);
    });
  });
}

interface TaskStatus {
  state: string;
  threads: number;
  uids: number[];
}

function ended(task: TaskStatus): boolean {
  return task.state === 'Z' || task.state === 'X';
}

/** Whether process `pid` has ended: a zombie not reaped yet, or gone. */
export function processEnded(pid: number): boolean {
  const task = readStatus(`/proc/${pid}/status`);
  return task === null || ended(task);
}

function runsAs(task: TaskStatus, uid: number): boolean {
  return !ended(task) && task.uids.includes(uid);
}

function numericEntries(dir: string): number[] {
  try {
    return readdirSync(dir).filter((name) => /^\d+$/.test(name)).map(Number);
  } catch {
    return []; // the process exited while we looked
  }
}

// One reused buffer and one read: /proc status files are made whole at the first read, so a read
// shorter than the buffer has it all. With readFileSync (fstat, fresh buffers, a read to find the
// end) a /proc scan, done twice per build, cost about four times the CPU.
const statusBuffer = Buffer.allocUnsafe(16384);

function readProcText(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const length = readSync(fd, statusBuffer, 0, statusBuffer.length, null);
    if (length === statusBuffer.length) return readFileSync(path, 'latin1'); // status is ~1.5 KiB; never cut it short
    return statusBuffer.toString('latin1', 0, length);
  } finally {
    closeSync(fd);
  }
}

function readStatus(path: string): TaskStatus | null {
  let text: string;
  try {
    text = readProcText(path);
  } catch {
    return null; // exited while we looked
  }
  const state = /^State:\s+(\S)/m.exec(text)?.[1];
  const threads = /^Threads:\s+(\d+)/m.exec(text)?.[1];
  const uidLine = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(text);
  if (!state || !threads || !uidLine) throw new PoolError(`${path}: unexpected format`);
  return { state, threads: Number(threads), uids: uidLine.slice(1, 5).map(Number) };
}

/**
 * Kills every process running as `uid` and returns how many there were; throws if any survives.
 * kill(-1) from the UID itself reaches its whole process set at once (a fork bomb cannot outrun
 * it); root then kills by PID what only has the UID as effective or fs uid.
 */
export async function reapUid(uid: number): Promise<{ killed: number }> {
  // kill -1 as root would kill every process on the machine.
  const self = process.getuid?.() ?? 0;
  if (!Number.isInteger(uid) || uid <= 0 || uid > MAX_ID || uid === self) {
    throw new PoolError(`refusing to reap uid ${uid}`);
  }
  const killed = new Set<number>();
  const deadline = Date.now() + REAP_DEADLINE_MS;
  for (let pause = 2; ; pause = Math.min(pause * 2, 100)) {
    const remaining = processesOf(uid);
    if (remaining.length === 0) return { killed: killed.size };
    if (Date.now() > deadline) {
      throw new PoolError(`uid ${uid}: processes survive SIGKILL: ${remaining.join(', ')}`);
    }
    for (const pid of remaining) killed.add(pid);
    const [command, ...args] = KILL_AS(uid);
    spawnSync(command, args, { cwd: '/', env: {}, stdio: 'ignore' });
    for (const pid of processesOf(uid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    await sleep(pause);
  }
}
