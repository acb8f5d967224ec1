// A policy's seccomp section → SeccompPlan, alone or on top of an imported OCI profile.
// Pure: the profile arrives already imported (the loader reads it).
//
// With a profile, the profile is the base and the policy can only make it stricter:
// - where the profile (or the policy) both allows and refuses a syscall outright, it is refused
//   (libseccomp would keep whichever rule comes first);
// - default action: the stricter of the two (kill > trap > errno > log > allow; a tie keeps the
//   profile's), so an allowlist profile stays an allowlist;
// - architectures: the policy's list when it has one, else the profile's (either way every ABI
//   covered gets the whole filter and the others are killed);
// - the policy's rules may only refuse (errno, trap, kill): the profile decides what is allowed;
// - a syscall the policy refuses outright is refused with the policy's action, unless the profile
//   refuses it outright with a stricter one;
// - a refusal under argument conditions is added where the profile refuses the syscall only under
//   conditions or leaves it to an allowing default; where the profile refuses it outright the
//   profile's rule stays; where the profile allows it (outright or under conditions) and the
//   default refuses, one filter cannot say "refuse these calls, allow the rest" (libseccomp keeps
//   the unconditional rule, or orders overlapping ones as it likes): that combination is refused.
import type { Policy, SeccompActionName } from '../policy/types.js';
import type { NetworkPlan, SeccompAction, SeccompPlan, SeccompRule } from '../plan/types.js';
import { ERRNO, MADV_DONTFORK } from '../linux/constants.js';
import { DEFAULTS } from '../plan/defaults.js';

export type SeccompSection = NonNullable<Policy['seccomp']>;

/** A profile imported by the loader: the file as resolved, and its rules for this build's capabilities. */
export interface ImportedProfile {
  path: string;
  filter: SeccompPlan;
}

/** A combination the policy asks for that cannot be planned; pointer is into the merged policy. */
export interface SeccompConflict {
  pointer: string;
  message: string;
}

const RANK: Record<SeccompAction['kind'], number> = { allow: 0, log: 1, errno: 2, trap: 3, kill_thread: 4, kill_process: 5 };

function blocks(action: SeccompAction): boolean {
  return RANK[action.kind] >= RANK.errno;
}

export function seccompAction(name: SeccompActionName, errnoName: string): SeccompAction {
  if (name === 'errno') return { kind: 'errno', errno: ERRNO[errnoName]!, name: errnoName };
  return { kind: name };
}

interface OwnRule {
  rule: SeccompRule;
  /** Where the rule is written: /seccomp/deny/N or /seccomp/rules/N. */
  pointer: string;
}

function ownRules(s: SeccompSection): OwnRule[] {
  const errnoName = s.errno ?? DEFAULTS.seccompErrno;
  const out: OwnRule[] = (s.deny ?? []).map((syscall, i) => ({
    rule: { syscall, action: seccompAction('errno', errnoName), args: [], optional: false },
    pointer: `/seccomp/deny/${i}`,
  }));
  (s.rules ?? []).forEach((rule, i) => {
    for (const syscall of Array.isArray(rule.syscall) ? rule.syscall : [rule.syscall]) {
      out.push({
        rule: {
          syscall,
          action: seccompAction(rule.action, rule.errno ?? errnoName),
          args: (rule.args ?? []).map((a) => ({ index: a.index, op: a.op, value: a.value, ...(a.mask !== undefined ? { mask: a.mask } : {}) })),
          optional: rule.optional ?? false,
        },
        pointer: `/seccomp/rules/${i}`,
      });
    }
  });
  return out;
}

/**
 * What the compiled filter will do: libseccomp keeps the first outright (argument-free) rule for a
 * syscall and drops every other rule for it, so a syscall both allowed and refused outright would
 * be decided by order. Here the strictest outright rule is the one kept (the first of equals).
 */
export function effectiveRules<R extends SeccompRule>(rules: R[]): R[] {
  const outright = new Map<string, R>();
  for (const rule of rules) {
    const kept = outright.get(rule.syscall);
    if (rule.args.length === 0 && (!kept || RANK[rule.action.kind] > RANK[kept.action.kind])) outright.set(rule.syscall, rule);
  }
  return rules.filter((rule) => {
    const kept = outright.get(rule.syscall);
    return kept === undefined || kept === rule;
  });
}

/** `/seccomp/rules/3` → `seccomp.rules[3]`, as messages name settings. */
function label(pointer: string): string {
  return pointer.slice(1).replace(/\/(\d+)$/, '[$1]').replace(/\//g, '.');
}

function describe(action: SeccompAction): string {
  return action.kind === 'errno' ? `errno ${action.name}` : action.kind;
}

/**
 * The filter a policy's seccomp section plans, on top of `profile` when it names one.
 * Architectures stay as the policy writes them: the planner resolves `native` for the host it is told of.
 */
export function planSeccompSection(s: SeccompSection, profile: ImportedProfile | undefined): { filter: SeccompPlan; conflicts: SeccompConflict[] } {
  const errnoName = s.errno ?? DEFAULTS.seccompErrno;
  const own = ownRules(s);
  const ownArchitectures = s.architectures ? [...new Set<string>(s.architectures)] : undefined;
  if (!profile) {
    return {
      filter: { defaultAction: seccompAction(s.default ?? 'allow', errnoName), architectures: ownArchitectures ?? ['native'], rules: effectiveRules(own.map((o) => o.rule)) },
      conflicts: [],
    };
  }

  const conflicts: SeccompConflict[] = [];
  const base = profile.filter;
  const policyDefault = s.default === undefined ? undefined : seccompAction(s.default, errnoName);
  const defaultFromPolicy = policyDefault !== undefined && RANK[policyDefault.kind] > RANK[base.defaultAction.kind];
  const defaultAction = defaultFromPolicy ? policyDefault : base.defaultAction;

  const reported = new Set<string>();
  const conflict = (pointer: string, message: string) => {
    if (!reported.has(pointer)) conflicts.push({ pointer, message });
    reported.add(pointer);
  };
  for (const { rule, pointer } of own) {
    if (!blocks(rule.action)) {
      conflict(`${pointer}/action`, `${label(pointer)}: with seccomp.profile the policy's rules can only refuse (errno, trap, kill_thread, kill_process), not ${rule.action.kind}: the profile decides what is allowed`);
    }
  }
  const theirsBySyscall = new Map<string, SeccompRule[]>();
  const baseRules = effectiveRules(base.rules);
  for (const rule of baseRules) theirsBySyscall.set(rule.syscall, [...(theirsBySyscall.get(rule.syscall) ?? []), rule]);
  const mineBySyscall = new Map<string, OwnRule[]>();
  for (const o of own.filter((o) => blocks(o.rule.action))) mineBySyscall.set(o.rule.syscall, [...(mineBySyscall.get(o.rule.syscall) ?? []), o]);

  /** For each syscall the policy names: which of the two sides' rules stay. */
  const keepTheirs = new Map<string, (rule: SeccompRule) => boolean>();
  const keepMine = new Set<string>();
  for (const [syscall, mine] of mineBySyscall) {
    const theirs = theirsBySyscall.get(syscall) ?? [];
    const theirOutrightRefusal = theirs.find((r) => r.args.length === 0 && blocks(r.action));
    const myOutright = mine.find((o) => o.rule.args.length === 0);
    if (myOutright) {
      if (theirOutrightRefusal && RANK[theirOutrightRefusal.action.kind] > RANK[myOutright.rule.action.kind]) keepTheirs.set(syscall, () => true);
      else {
        keepTheirs.set(syscall, () => false);
        keepMine.add(syscall);
      }
    } else if (theirOutrightRefusal) {
      keepTheirs.set(syscall, () => true);
    } else if (!theirs.some((r) => !blocks(r.action))) {
      keepMine.add(syscall);
    } else if (!blocks(defaultAction)) {
      // The profile's allows say what the default says already.
      keepTheirs.set(syscall, (r) => blocks(r.action));
      keepMine.add(syscall);
    } else {
      const how = theirs.some((r) => !blocks(r.action) && r.args.length === 0) ? 'outright' : 'under conditions';
      for (const { pointer } of mine) {
        conflict(
          pointer,
          `${label(pointer)}: the profile allows ${syscall} ${how} and the default (${describe(defaultAction)}) refuses the rest; ` +
            `one filter cannot add a refusal under conditions to that (libseccomp would keep one rule or the other): refuse ${syscall} outright in seccomp.deny, or drop this rule`,
        );
      }
    }
  }

  const rules: SeccompRule[] = effectiveRules([
    ...baseRules.filter((r) => keepTheirs.get(r.syscall)?.(r) ?? true).map((r) => ({ ...r, fromProfile: true as const })),
    ...own.filter((o) => keepMine.has(o.rule.syscall) && blocks(o.rule.action)).map((o) => o.rule),
  ]);
  return {
    filter: {
      defaultAction,
      architectures: ownArchitectures ?? base.architectures,
      rules,
      profile: { path: profile.path, defaultFrom: defaultFromPolicy ? 'policy' : 'profile', architecturesFrom: ownArchitectures ? 'policy' : 'profile' },
    },
    conflicts,
  };
}

/** The socket family a network namespace does not isolate. */
export const AF_VSOCK = 40;

/**
 * The filter the runtime stacks on the policy's own while the Plan keeps vsock closed (the
 * kernel applies the stricter answer of the two): socket(AF_VSOCK) fails with EPERM on the
 * x86_64 and x32 ABIs (the family is an int: the kernel ignores the upper 32 bits), and everything else passes on to the policy's filter, other ABIs too.
 * i386 is left out: its socket(2) goes through socketcall(2), whose arguments are in memory,
 * and libseccomp would refuse every socketcall(SYS_SOCKET) instead.
 */
export function vsockFilter(network: NetworkPlan): SeccompPlan | null {
  if (network.vsock) return null;
  return {
    defaultAction: { kind: 'allow' },
    architectures: ['x86_64', 'x32'],
    rules: [{ syscall: 'socket', action: seccompAction('errno', 'EPERM'), args: [{ index: 0, op: 'masked_eq', mask: 0xffffffff, value: AF_VSOCK }], optional: false }],
  };
}

/**
 * The filter every process that forks inits loads before its first fork, and so every build
 * carries (a fresh-Node init loads it itself): madvise(MADV_DONTFORK) succeeds without effect.
 * V8 marks each heap mapping it makes MADV_DONTFORK, and a forked child lacks every mapping so
 * marked: with this filter the heap stays whole in every child, however it grows, instead of
 * being marked forkable again before each fork, which raced with V8 mapping more.
 * Every ABI gets the rule, so that a 32-bit builder sees the same.
 */
export function forkableMemoryFilter(): SeccompPlan {
  return {
    defaultAction: { kind: 'allow' },
    architectures: ['x86_64', 'x32', 'x86'],
    rules: [{ syscall: 'madvise', action: { kind: 'errno', errno: 0, name: 'success' }, args: [{ index: 2, op: 'masked_eq', mask: 0xffffffff, value: MADV_DONTFORK }], optional: false }],
  };
}
