// Shared by the checks: what the Plan says about a path, mount or syscall.
import { existsSync } from 'node:fs';
import { isUnder } from '../../policy/semantics.js';
import type { Mount, Plan, SeccompRule } from '../../plan/types.js';
import type { MountEntry, Observation } from '../observation.js';

/** The Plan's mounts that are really made (optional binds of missing sources are skipped). */
export function effectiveMounts(plan: Plan): Mount[] {
  return plan.mounts.filter((m) => !(m.type === 'bind' && m.optional && m.source.kind === 'host' && !existsSync(m.source.path)));
}

/** The innermost planned mount holding `path`, or undefined when it lies on the root tmpfs. */
export function mountHolding(plan: Plan, path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of effectiveMounts(plan)) {
    if (isUnder(path, m.target) && (!best || m.target.length >= best.target.length)) best = m;
  }
  return best;
}

/** The last mount the kernel lists at `target` inside the sandbox (the one on top). */
export function observedMount(obs: Observation, target: string): MountEntry | undefined {
  return obs.mounts.filter((m) => m.target === target).at(-1);
}

function conditionHolds(rule: SeccompRule, args: number[]): boolean {
  return rule.args.every((c) => {
    const a = args[c.index] ?? 0;
    switch (c.op) {
      case 'eq': return a === c.value;
      case 'ne': return a !== c.value;
      case 'lt': return a < c.value;
      case 'le': return a <= c.value;
      case 'gt': return a > c.value;
      case 'ge': return a >= c.value;
      case 'masked_eq': return (a & (c.mask ?? 0)) === c.value;
    }
  });
}

/** What the Plan's filter answers to `syscall(args)`: an errno name, or 'ok' when it lets it through. */
export function plannedAnswer(plan: Plan, syscall: string, args: number[]): string {
  for (const rule of plan.seccomp?.rules ?? []) {
    if (rule.syscall === syscall && rule.action.kind === 'errno' && conditionHolds(rule, args)) return rule.action.name;
  }
  return 'ok';
}

/** The kernel's name for a planned namespace, as /proc/self/ns lists it. */
export const NS_FILE: Record<Plan['namespaces'][number], string> = { pid: 'pid', mount: 'mnt', uts: 'uts', ipc: 'ipc', net: 'net', cgroup: 'cgroup' };
