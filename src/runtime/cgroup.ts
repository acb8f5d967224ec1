// The build's own cgroup, for its limits (pids, memory, cpu) and the accounting of its memory.
// Supports cgroup v2 and the v1 controllers at /sys/fs/cgroup/<controller>; a planned limit
// whose controller is missing stops the build (fail closed).
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Limits } from '../plan/types.js';

// cpuacct: cgroup v1's CPU accounting (v2 counts it in every cgroup's cpu.stat); never a limit.
type Controller = 'pids' | 'memory' | 'cpu' | 'cpuacct';

interface Placement {
  controller: Controller;
  /** The cgroup directory made for this build. */
  dir: string;
  version: 1 | 2;
}

export interface BuildCgroup {
  placements: Placement[];
  /** Distinct directories (v2 has one for all controllers). */
  dirs: string[];
}

interface Hierarchy {
  version: 1 | 2;
  mountPoint: string;
  controllers: Set<string>;
}

function hierarchies(): Hierarchy[] {
  const found: Hierarchy[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const mountPoint = pre.split(' ')[4];
    const [fstype, , superOptions] = post.split(' ');
    if (fstype === 'cgroup2') {
      const listed = existsSync(join(mountPoint, 'cgroup.subtree_control'))
        ? readFileSync(join(mountPoint, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/)
        : [];
      found.push({ version: 2, mountPoint, controllers: new Set(listed.filter(Boolean)) });
    } else if (fstype === 'cgroup') {
      found.push({ version: 1, mountPoint, controllers: new Set(superOptions.split(',')) });
    }
  }
  return found;
}

function wanted(limits: Limits): Controller[] {
  const c = limits.cgroup;
  return [c.pids !== undefined && 'pids', c.memoryBytes !== undefined && 'memory', c.cpu !== undefined && 'cpu'].filter(Boolean) as Controller[];
}

function settings(controller: Controller, version: 1 | 2, limits: Limits): [string, string][] {
  const c = limits.cgroup;
  switch (controller) {
    case 'pids':
      return [['pids.max', String(c.pids)]];
    case 'memory':
      // Unlimited: the cgroup only accounts the build's memory, for its peak.
      if (c.memoryBytes === undefined) return [];
      return version === 2
        ? [['memory.max', String(c.memoryBytes)], ['memory.swap.max', '0']]
        : [['memory.limit_in_bytes', String(c.memoryBytes)], ['memory.memsw.limit_in_bytes', String(c.memoryBytes)]];
    case 'cpuacct':
      return [];
    case 'cpu':
      return version === 2
        ? [['cpu.max', `${c.cpu!.quotaUs} ${c.cpu!.periodUs}`]]
        : [['cpu.cfs_period_us', String(c.cpu!.periodUs)], ['cpu.cfs_quota_us', String(c.cpu!.quotaUs)]];
  }
}

/** The hierarchy a controller is taken from: cgroup v2 when it has the controller enabled, else v1. */
function hierarchyOf(all: Hierarchy[], controller: Controller): Hierarchy | undefined {
  return all.find((x) => x.version === 2 && x.controllers.has(controller)) ?? all.find((x) => x.version === 1 && x.controllers.has(controller));
}

/**
 * Creates `stockade/<id>` under each needed controller and writes the limits. The memory
 * controller is also used unlimited where the host has it, so that the build's peak memory is
 * known without limits.cgroup.memory (its absence stops nothing: no limit depends on it).
 */
export function createCgroup(id: string, limits: Limits): BuildCgroup | null {
  const all = hierarchies();
  const needed = wanted(limits);
  if (!needed.includes('memory') && hierarchyOf(all, 'memory')) needed.push('memory');
  // Accounting only, like the memory controller without a limit: the build's CPU time (cpuTime).
  if (!needed.some((c) => hierarchyOf(all, c)?.version === 2) && hierarchyOf(all, 'cpuacct')) needed.push('cpuacct');
  if (needed.length === 0) return null;
  const cgroup: BuildCgroup = { placements: [], dirs: [] };
  try {
    for (const controller of needed) {
      const h = hierarchyOf(all, controller);
      if (!h) throw new Error(`cgroup: no ${controller} controller on this host (limits.cgroup needs it)`);
      const dir = join(h.mountPoint, 'stockade', id);
      if (!cgroup.dirs.includes(dir)) {
        mkdirSync(dir, { recursive: true });
        cgroup.dirs.push(dir);
      }
      for (const [file, value] of settings(controller, h.version, limits)) {
        // The swap files are absent without swap accounting; there is no swap to bound then.
        if ((file === 'memory.swap.max' || file === 'memory.memsw.limit_in_bytes') && !existsSync(join(dir, file))) continue;
        writeFileSync(join(dir, file), value);
      }
      cgroup.placements.push({ controller, dir, version: h.version });
    }
  } catch (err) {
    removeDirs(cgroup.dirs);
    throw err;
  }
  return cgroup;
}

/** The existing `stockade/<id>` directories of a build's cgroup, under every hierarchy mounted. */
export function cgroupDirsOf(id: string): string[] {
  return [...new Set(hierarchies().map((h) => join(h.mountPoint, 'stockade', id)))].filter((dir) => existsSync(dir));
}

export function addProcess(cgroup: BuildCgroup, pid: number): void {
  for (const dir of cgroup.dirs) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
}

/** Peak memory of the build in bytes, where the hierarchy records it. */
export function peakMemory(cgroup: BuildCgroup | null): number | undefined {
  const memory = cgroup?.placements.find((p) => p.controller === 'memory');
  if (!memory) return undefined;
  const file = join(memory.dir, memory.version === 2 ? 'memory.peak' : 'memory.max_usage_in_bytes');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : undefined;
}

/** CPU time the build used, in microseconds: cgroup v2's cpu.stat, or v1's cpuacct (nanoseconds). */
export function cpuTime(cgroup: BuildCgroup | null): { userUs: number; systemUs: number } | undefined {
  const v2 = cgroup?.placements.find((p) => p.version === 2)?.dir;
  if (v2 !== undefined && existsSync(join(v2, 'cpu.stat'))) {
    const stat = new Map(readFileSync(join(v2, 'cpu.stat'), 'utf8').trim().split('\n').map((line) => line.split(' ') as [string, string]));
    const userUs = Number(stat.get('user_usec'));
    const systemUs = Number(stat.get('system_usec'));
    return Number.isFinite(userUs) && Number.isFinite(systemUs) ? { userUs, systemUs } : undefined;
  }
  const v1 = cgroup?.placements.find((p) => p.controller === 'cpuacct')?.dir;
  if (v1 === undefined || !existsSync(join(v1, 'cpuacct.usage_user'))) return undefined;
  const micros = (file: string) => Math.round(Number(readFileSync(join(v1, file), 'utf8').trim()) / 1000);
  return { userUs: micros('cpuacct.usage_user'), systemUs: micros('cpuacct.usage_sys') };
}

function removeDirs(dirs: string[]): void {
  for (const dir of dirs) if (existsSync(dir)) rmdirSync(dir);
}

/** How long a SIGKILLed cgroup may take to empty; a process stuck in D state longer is reported. */
const EMPTY_DEADLINE_MS = 3000;

function procsOf(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/**
 * Kills every process in the build's cgroup and waits until none is left; returns how many
 * there were. cgroup v2's cgroup.kill where the kernel has it (one write reaches the whole
 * cgroup, new children included); else SIGKILL to each listed process, again until the list
 * is empty (a process forked meanwhile is in the list next time: it cannot leave the cgroup).
 * Throws if any survives.
 */
export async function emptyCgroup(cgroup: Pick<BuildCgroup, 'dirs'>): Promise<{ killed: number }> {
  const killed = new Set<number>();
  const deadline = Date.now() + EMPTY_DEADLINE_MS;
  for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
    let remaining = 0;
    for (const dir of cgroup.dirs) {
      if (!existsSync(dir)) continue;
      const pids = procsOf(dir);
      if (pids.length === 0) continue;
      remaining += pids.length;
      for (const pid of pids) killed.add(pid);
      if (existsSync(join(dir, 'cgroup.kill'))) {
        writeFileSync(join(dir, 'cgroup.kill'), '1');
        continue;
      }
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
    }
    if (remaining === 0) return { killed: killed.size };
    if (Date.now() > deadline) throw new Error(`cgroup: processes remain in ${cgroup.dirs.join(', ')} after SIGKILL`);
    await sleep(pause);
  }
}

/** Kills whatever is left in the cgroup and removes it. */
export async function destroyCgroup(cgroup: Pick<BuildCgroup, 'dirs'>): Promise<void> {
  await emptyCgroup(cgroup);
  removeDirs(cgroup.dirs);
}
