// Crash safety: the daemon journals every build it starts (what it could leave behind) in its
// state directory, and on start cleans what a crashed predecessor's journal names: cgroups,
// processes of the pool's UIDs, build directories, stale lock records. Only what no live holder
// uses is touched: a UID whose lock is held belongs to a running build (a `stockade run`, say).
import { closeSync, constants, ftruncateSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { removeTree } from '../ffi/fsat.js';
import { flock, LOCK_EX, LOCK_NB } from '../ffi/libc.js';
import { SyscallError } from '../ffi/errors.js';
import { processesOf, reapUid, resolvePool } from '../pool/index.js';
import { lockPath, readLockState } from '../pool/lock.js';
import type { Plan } from '../plan/types.js';
import { unmountTop } from '../runtime/builddir.js';

export interface JournalRecord {
  daemonPid: number;
  id: string;
  buildName: string;
  hostParent: string;
  /** Build directory name with `{n}` for its number (Plan.build.hostName). */
  hostName: string;
  identity: Plan['identity'];
}

/** The daemon's state directory: one lock (one daemon per directory) and the journal. */
export class StateDir {
  private lockFd: number | undefined;

  constructor(readonly path: string) {}

  private get journal(): string {
    return join(this.path, 'builds');
  }

  /** Takes the daemon lock; throws when another daemon holds it. */
  lock(): void {
    mkdirSync(this.journal, { recursive: true, mode: 0o700 });
    const file = join(this.path, 'daemon.lock');
    const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    try {
      flock(fd, LOCK_EX | LOCK_NB);
    } catch (err) {
      closeSync(fd);
      if (err instanceof SyscallError && err.errno === 11) {
        throw new Error(`another stockade daemon (pid ${readFileSync(file, 'utf8').trim() || 'unknown'}) uses state directory ${this.path}`);
      }
      throw err;
    }
    ftruncateSync(fd, 0);
    writeFileSync(fd, `${process.pid}\n`);
    this.lockFd = fd;
  }

  unlock(): void {
    if (this.lockFd !== undefined) closeSync(this.lockFd);
    this.lockFd = undefined;
  }

  record(plan: Plan, id: string): void {
    const record: JournalRecord = {
      daemonPid: process.pid, id, buildName: plan.build.name, hostParent: plan.build.hostParent, hostName: plan.build.hostName, identity: plan.identity,
    };
    writeFileSync(join(this.journal, `${id}.json`), JSON.stringify(record) + '\n', { mode: 0o600 });
  }

  forget(id: string): void {
    try {
      unlinkSync(join(this.journal, `${id}.json`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Cleans after every journaled build of a predecessor; returns what was removed, one line each. */
  async recover(): Promise<string[]> {
    const removed: string[] = [];
    for (const file of readdirSync(this.journal).filter((f) => f.endsWith('.json'))) {
      const path = join(this.journal, file);
      let record: JournalRecord;
      try {
        record = JSON.parse(readFileSync(path, 'utf8')) as JournalRecord;
      } catch (err) {
        removed.push(`unreadable journal record ${path} (${(err as Error).message})`);
        unlinkSync(path);
        continue;
      }
      removed.push(...(await cleanAfter(record)));
      unlinkSync(path);
    }
    return removed;
  }
}

async function cleanAfter(record: JournalRecord): Promise<string[]> {
  const removed: string[] = [];
  const what = `build ${record.id} (${record.buildName}) of daemon pid ${record.daemonPid}`;
  // Cgroups are named NAME-SUPERVISORPID-START-uidUID by the runtime: the pid tells whose they are.
  for (const dir of stockadeCgroups(`${record.buildName}-${record.daemonPid}-`)) {
    const killed = await emptyCgroup(dir);
    removed.push(`cgroup ${dir}${killed ? ` and its ${killed} processes` : ''}, of ${what}`);
  }
  const free = resolvePool(record.identity).members.filter((m) => !readLockState(record.identity.stateDir, m.uid).busy);
  for (const member of free) {
    if (processesOf(member.uid).length === 0) continue;
    const { killed } = await reapUid(member.uid);
    removed.push(`${killed} processes of build uid ${member.uid}, of ${what}`);
  }
  const freeUids = new Set(free.map((m) => m.uid));
  const pattern = new RegExp(`^${escapeRegExp(record.hostName).replace('\\{n\\}', '\\d+')}$`);
  let names: string[] = [];
  try {
    names = readdirSync(record.hostParent).filter((n) => pattern.test(n));
  } catch {
    // The parent is gone: nothing of the build can remain there.
  }
  for (const name of names) {
    const path = join(record.hostParent, name);
    const dir = lstatSync(path);
    const top = safeLstat(join(path, 'top'));
    // Only root-owned build directories whose `top` belongs to a free UID of this pool.
    if (!dir.isDirectory() || dir.uid !== 0 || !top || !freeUids.has(top.uid)) continue;
    // A build dir limited by limits.build_dir_bytes has its tmpfs mounted on `top`.
    if (unmountTop(path)) removed.push(`build directory tmpfs ${join(path, 'top')}, of ${what}`);
    removeTree(path);
    removed.push(`build directory ${path}, of ${what}`);
  }
  for (const member of free) {
    const file = lockPath(record.identity.stateDir, member.uid);
    let holder: { pid?: number; build?: string } | undefined;
    try {
      holder = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      continue; // no record (released cleanly) or none written
    }
    if (holder?.pid !== record.daemonPid) continue;
    // The flock went with the crashed process; the record still names it as holder.
    writeFileSync(file, '');
    removed.push(`stale lock record ${file} (build ${holder.build}), of ${what}`);
  }
  return removed;
}

function safeLstat(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `stockade/PREFIX*` directories under every cgroup hierarchy mounted. */
function stockadeCgroups(prefix: string): string[] {
  const found: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post || !/^cgroup2? /.test(post)) continue;
    const root = join(pre.split(' ')[4], 'stockade');
    let names: string[] = [];
    try {
      names = readdirSync(root).filter((n) => n.startsWith(prefix));
    } catch {
      continue;
    }
    found.push(...names.map((n) => join(root, n)));
  }
  return found;
}

async function emptyCgroup(dir: string): Promise<number> {
  const killed = new Set<number>();
  for (let attempt = 0; attempt < 300; attempt++) {
    const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    if (pids.length === 0) {
      rmdirSync(dir);
      return killed.size;
    }
    for (const pid of pids) {
      killed.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await sleep(10);
  }
  throw new Error(`cgroup ${dir}: processes survive SIGKILL`);
}
