// Host-side observations around sandbox runs: processes of the pool's users, and what a build
// could leave behind.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processesOf } from '../pool/reap.js';
import { resolvePool } from '../pool/resolve.js';
import type { Plan } from '../plan/types.js';

export function poolUids(plan: Plan): number[] {
  return resolvePool(plan.identity).members.map((m) => m.uid);
}

export function poolProcesses(plan: Plan): number {
  return poolUids(plan).reduce((n, uid) => n + processesOf(uid).length, 0);
}

/** Host build directories of builds named like the Plan's (guix-build-NAME.drv-N). */
export function buildDirs(plan: Plan): string[] {
  const prefix = plan.build.hostDirPrefix;
  return readdirSync(plan.build.hostParent).filter((n) => n.startsWith(prefix)).map((n) => join(plan.build.hostParent, n));
}

/** Stockade cgroups left under any hierarchy for builds started by this process. */
export function buildCgroups(plan: Plan): string[] {
  const found: string[] = [];
  const roots = ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c))];
  for (const root of roots) {
    const dir = join(root, 'stockade');
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) if (name.startsWith(`${plan.build.name}-${process.pid}-`)) found.push(join(dir, name));
  }
  return found;
}

export function mountsUnder(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((t) => t?.startsWith(path));
}

/** Everything of the Plan's builds still on the host. */
export function leftovers(plan: Plan): { processes: number; buildDirs: string[]; cgroups: string[]; mounts: string[] } {
  return { processes: poolProcesses(plan), buildDirs: buildDirs(plan), cgroups: buildCgroups(plan), mounts: mountsUnder(join(plan.build.hostParent, plan.build.hostDirPrefix)) };
}
