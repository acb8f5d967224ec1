// guix-daemon's build options given to `stockade daemon`: daemon-wide bounds that a policy or a
// request may tighten but never loosen. Applied to the spec and the Plan here, before the runtime
// sees them, so that what runs is what `explain` of the effective Plan would show.
import { DEFAULTS } from '../plan/defaults.js';
import type { Mount, Plan } from '../plan/types.js';
import { bindHostPath } from '../plan/describe.js';
import type { BuildSpec } from '../policy/types.js';
import { isUnder, normalise } from '../policy/semantics.js';
import { RESERVED_TARGETS } from '../policy/lists.js';

export interface ChrootDirectory {
  path: string;
  kind: 'dir' | 'file';
}

export interface DaemonDefaults {
  /** --build-users-group: the only group build users may come from. */
  buildUsersGroup?: string;
  /** --chroot-directory: bound read-only into every build. */
  chrootDirectories: ChrootDirectory[];
  /** --cores: at most this many (0: no bound). */
  cores: number;
  /** --timeout, --max-silent-time: in seconds, 0 for none. */
  timeoutSeconds: number;
  maxSilentSeconds: number;
  /** --keep-failed. */
  keepFailed: boolean;
}

export const NO_DEFAULTS: DaemonDefaults = { chrootDirectories: [], cores: 0, timeoutSeconds: 0, maxSilentSeconds: 0, keepFailed: false };

export class DefaultsRefused extends Error {}

/** At start: a chroot directory that would hide what Stockade sets up in every build. */
export function checkChrootDirectories(paths: string[]): void {
  for (const path of paths) {
    const hidden = RESERVED_TARGETS.find((t) => isUnder(t, path));
    if (hidden) throw new DefaultsRefused(`--chroot-directory=${path} would hide ${hidden} (set up by Stockade itself)`);
  }
}

/** The smaller of two limits where 0 means none. */
function tighter(a: number, b: number): number {
  return a === 0 ? b : b === 0 ? a : Math.min(a, b);
}

/** --cores bounds the spec's cores; a spec asking for 0 (all) gets the bound. */
export function boundSpec(spec: BuildSpec, defaults: DaemonDefaults): BuildSpec {
  if (defaults.cores === 0) return spec;
  return { ...spec, cores: tighter(spec.cores ?? 0, defaults.cores) };
}

/**
 * The Plan with the daemon's bounds applied. Throws DefaultsRefused when the plan cannot
 * honour them (a pool outside --build-users-group, a chroot directory that would hide a
 * mount of the plan).
 */
export function applyDefaults(plan: Plan, defaults: DaemonDefaults): Plan {
  const identity = boundIdentity(plan, defaults);
  return {
    ...plan,
    identity,
    mounts: addChrootDirectories(plan, defaults.chrootDirectories),
    timeouts: {
      totalSeconds: tighter(plan.timeouts.totalSeconds, defaults.timeoutSeconds),
      maxSilentSeconds: tighter(plan.timeouts.maxSilentSeconds, defaults.maxSilentSeconds),
    },
  };
}

/**
 * With --build-users-group, builds run only as members of that group: a policy on the default
 * group pool is moved to it; a policy naming another group, or a uid range, is refused, as its
 * users were not dedicated to builds by whoever runs this daemon.
 */
function boundIdentity(plan: Plan, defaults: DaemonDefaults): Plan['identity'] {
  const group = defaults.buildUsersGroup;
  const { pool } = plan.identity;
  if (group === undefined) return plan.identity;
  if (pool.kind === 'group' && (pool.group === group || pool.group === DEFAULTS.users.group)) {
    return { ...plan.identity, pool: { kind: 'group', group } };
  }
  const own = pool.kind === 'group' ? `group '${pool.group}'` : `uids ${pool.first}-${pool.first + pool.count - 1}`;
  throw new DefaultsRefused(`policy '${plan.policy.name}' takes build users from ${own}; this daemon builds only as members of '${group}' (--build-users-group)`);
}

function addChrootDirectories(plan: Plan, directories: ChrootDirectory[]): Mount[] {
  const mounts = [...plan.mounts];
  const taken = [
    ...RESERVED_TARGETS.map((t) => ({ target: t, what: 'set up by Stockade itself' })),
    ...plan.mounts.map((m) => ({ target: m.target, what: `the plan's ${m.role} mount` })),
    ...plan.etc.map((f) => ({ target: f.path, what: 'a file Stockade writes' })),
    // An output is no mount target (the builder makes it), yet a bind there would take its place.
    ...plan.build.outputs.map((o) => ({ target: o, what: 'an output of the build' })),
    { target: plan.build.dir, what: 'the build directory' },
  ];
  for (const { path, kind } of directories) {
    const target = normalise(path);
    const same = plan.mounts.find((m) => m.type === 'bind' && m.readonly && bindHostPath(m.source) === target && m.target === target);
    if (same) continue;
    const hidden = taken.find((t) => isUnder(t.target, target));
    if (hidden) {
      throw new DefaultsRefused(`--chroot-directory=${path} would hide ${hidden.target} (${hidden.what})`);
    }
    mounts.push({ source: { kind: 'host', path: target }, target, type: 'bind', readonly: true, nosuid: true, nodev: true, noexec: false, kind, role: 'chroot-directory' });
  }
  // Parents before children, as the planner orders them.
  const depth = (m: Mount) => m.target.split('/').filter(Boolean).length;
  return mounts.sort((a, b) => depth(a) - depth(b));
}
