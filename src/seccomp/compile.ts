// SeccompPlan -> libseccomp filter. Compiling validates everything and fails closed: an
// unknown architecture, syscall name (unless the rule is optional), errno or condition is an
// error, never a rule quietly left out.
import type { SeccompAction, SeccompArgCondition, SeccompPlan, SeccompRule } from '../plan/types.js';
import {
  NR_SCMP_ERROR,
  SCMP_ACT,
  SCMP_CMP,
  SCMP_FLTATR,
  archToken,
  checkRc,
  exportToBuffer,
  libseccomp,
  type FilterHandle,
  type ScmpArgCmp,
} from '../ffi/seccomp.js';
import { setNoNewPrivs } from '../ffi/libc.js';
import { quote } from '../ffi/errors.js';

const MAX_ERRNO = 4095;

export interface CompiledSeccomp {
  /** The libseccomp filter context; owned by this object until load() or release(). */
  readonly ctx: FilterHandle;
  /** libseccomp names of the architectures the filter covers. */
  readonly architectures: string[];
  /** Syscalls of optional rules that this libseccomp does not know, left out of the filter. */
  readonly skipped: string[];
  release(): void;
}

export function actionValue(action: SeccompAction): number {
  switch (action.kind) {
    case 'allow':
      return SCMP_ACT.ALLOW;
    case 'errno':
      if (!Number.isInteger(action.errno) || action.errno < 0 || action.errno > MAX_ERRNO) {
        throw new Error(`seccomp: errno ${action.errno} (${action.name}) is outside 0..${MAX_ERRNO}`);
      }
      return SCMP_ACT.ERRNO | action.errno;
    case 'kill_process':
      return SCMP_ACT.KILL_PROCESS;
    case 'kill_thread':
      return SCMP_ACT.KILL_THREAD;
    case 'trap':
      return SCMP_ACT.TRAP;
    case 'log':
      return SCMP_ACT.LOG;
    default:
      throw new Error(`seccomp: unknown action ${JSON.stringify(action)}`);
  }
}

/** A condition value as the uint64 libseccomp compares with; negative numbers are two's complement. */
function datum(value: number, what: string): bigint {
  if (!Number.isSafeInteger(value)) throw new Error(`seccomp: ${what} ${value} is not an exact integer`);
  return BigInt.asUintN(64, BigInt(value));
}

/** The conditions of a rule as libseccomp's struct scmp_arg_cmp values. */
export function packConditions(syscall: string, conditions: readonly SeccompArgCondition[]): ScmpArgCmp[] | null {
  if (conditions.length === 0) return null;
  return conditions.map((c, i) => {
    const where = `${syscall} argument condition ${i}`;
    if (!Number.isInteger(c.index) || c.index < 0 || c.index > 5) throw new Error(`seccomp: ${where}: index ${c.index} is outside 0..5`);
    const op = SCMP_CMP[c.op];
    if (op === undefined) throw new Error(`seccomp: ${where}: unknown operator '${c.op}'`);
    if (c.op === 'masked_eq') {
      // libseccomp: datum_a is the mask, datum_b the value (arg & mask) must equal.
      if (c.mask === undefined) throw new Error(`seccomp: ${where}: masked_eq needs a mask`);
      return { arg: c.index, op, datum_a: datum(c.mask, 'mask'), datum_b: datum(c.value, 'value') };
    }
    return { arg: c.index, op, datum_a: datum(c.value, 'value'), datum_b: 0n };
  });
}

function renderRule(rule: SeccompRule): string {
  const conditions = rule.args.map((c) => `a${c.index} ${c.op} ${c.value}${c.mask === undefined ? '' : ` mask ${c.mask}`}`);
  return `${rule.syscall}${conditions.length ? ` [${conditions.join(', ')}]` : ''} -> ${rule.action.kind}`;
}

export interface CompileOptions {
  /** What a syscall of an architecture the plan does not list gets: killed (a policy's filter) or left to other filters. */
  otherArchitectures?: 'kill' | 'allow';
  /** Every thread of the process gets the filter (TSYNC), not only the calling one. */
  allThreads?: boolean;
}

/** Builds (but does not load) the filter a SeccompPlan describes. */
export function compileSeccomp(plan: SeccompPlan, options: CompileOptions = {}): CompiledSeccomp {
  const lib = libseccomp();
  if (plan.architectures.length === 0) throw new Error('seccomp: the plan lists no architecture');
  const tokens = new Map(plan.architectures.map((name) => [archToken(name), name]));
  const defaultAction = actionValue(plan.defaultAction);

  // Resolve every name first so one error can list all the unknown ones.
  const unknown: string[] = [];
  const skipped: string[] = [];
  const resolved: { rule: SeccompRule; nr: number }[] = [];
  for (const rule of plan.rules) {
    const nr = lib.resolveName(rule.syscall);
    if (nr === NR_SCMP_ERROR) {
      (rule.optional ? skipped : unknown).push(rule.syscall);
      continue;
    }
    resolved.push({ rule, nr });
  }
  if (unknown.length > 0) {
    const { major, minor, micro } = lib.version();
    const names = [...new Set(unknown)];
    throw new Error(`seccomp: syscall${names.length > 1 ? 's' : ''} unknown to libseccomp ${major}.${minor}.${micro}: ${names.join(', ')}`);
  }

  const ctx = lib.init(defaultAction);
  if (ctx === null) throw new Error(`seccomp: seccomp_init refused default action ${plan.defaultAction.kind}`);
  let owned = true;
  const release = () => {
    if (owned) lib.release(ctx);
    owned = false;
  };
  try {
    const attr = (name: keyof typeof SCMP_FLTATR, value: number) =>
      checkRc(lib.attrSet(ctx, SCMP_FLTATR[name], value), 'seccomp_attr_set', () => `SCMP_FLTATR_${name}, ${value}`);
    attr('API_SYSRAWRC', 1);
    // A syscall made through an ABI the filter does not cover must never run.
    attr('ACT_BADARCH', options.otherArchitectures === 'allow' ? SCMP_ACT.ALLOW : SCMP_ACT.KILL_PROCESS);
    // By default only the calling thread (the one that will execve the builder) gets the filter.
    attr('CTL_TSYNC', options.allThreads ? 1 : 0);
    // A binary tree of syscalls: long allow lists (Docker's profile) cost O(log n) per call.
    attr('CTL_OPTIMIZE', 2);

    const native = lib.archNative();
    for (const [token, name] of tokens) {
      if (token !== native) checkRc(lib.archAdd(ctx, token), 'seccomp_arch_add', () => quote(name));
    }
    if (!tokens.has(native)) checkRc(lib.archRemove(ctx, native), 'seccomp_arch_remove', () => 'native');

    for (const { rule, nr } of resolved) {
      const action = actionValue(rule.action);
      // libseccomp refuses a rule that repeats the default action; it would change nothing.
      if (action === defaultAction) continue;
      const conditions = packConditions(rule.syscall, rule.args);
      checkRc(lib.ruleAddArray(ctx, action, nr, rule.args.length, conditions), 'seccomp_rule_add_array', () => renderRule(rule));
    }
    return {
      ctx,
      architectures: [...tokens.values()].map((name) => (name === 'native' ? nativeArchName() : name)),
      skipped: [...new Set(skipped)],
      release,
    };
  } catch (err) {
    release();
    throw err;
  }
}

/** libseccomp's name for this machine's architecture (Stockade runs on x86_64 only: see arch.ts). */
export function nativeArchName(): string {
  return 'x86_64';
}

/**
 * Loads the filter into the calling thread, after setting NO_NEW_PRIVS (which an unprivileged
 * process needs to load a filter, and which the runtime wants anyway). Releases the context.
 */
export function loadSeccomp(compiled: CompiledSeccomp): void {
  try {
    setNoNewPrivs();
    checkRc(libseccomp().load(compiled.ctx), 'seccomp_load', () => 'ctx');
  } finally {
    compiled.release();
  }
}

/**
 * Loads the filter without setting NO_NEW_PRIVS, which only a process with CAP_SYS_ADMIN may do:
 * for a filter the runtime adds whatever the policy's no_new_privs says. Releases the context.
 */
export function loadSeccompPrivileged(compiled: CompiledSeccomp): void {
  try {
    checkRc(libseccomp().attrSet(compiled.ctx, SCMP_FLTATR.CTL_NNP, 0), 'seccomp_attr_set', () => 'SCMP_FLTATR_CTL_NNP, 0');
    checkRc(libseccomp().load(compiled.ctx), 'seccomp_load', () => 'ctx');
  } finally {
    compiled.release();
  }
}

export type SeccompExportFormat = 'pfc' | 'bpf' | 'json';
export const SECCOMP_EXPORT_FORMATS: readonly SeccompExportFormat[] = ['pfc', 'bpf', 'json'];

/**
 * The filter in a reviewable form: libseccomp's pseudo filter code (pfc), the raw BPF program
 * (bpf), or the normalised plan (json: architectures resolved, skipped syscalls listed).
 */
export function exportSeccomp(plan: SeccompPlan, format: SeccompExportFormat): Buffer {
  const compiled = compileSeccomp(plan);
  try {
    if (format === 'json') {
      const skipped = new Set(compiled.skipped);
      const normalised = {
        ...(plan.profile ? { profile: plan.profile } : {}),
        defaultAction: plan.defaultAction,
        architectures: compiled.architectures,
        rules: plan.rules.filter((r) => !skipped.has(r.syscall)),
        skipped: compiled.skipped,
      };
      return Buffer.from(JSON.stringify(normalised, null, 2) + '\n');
    }
    const exported = exportToBuffer(compiled.ctx, format);
    // pfc is for people: say where the rules came from; bpf stays the kernel's bytes.
    return format === 'pfc' && plan.profile ? Buffer.concat([Buffer.from(`${profileNote(plan)}\n`), exported]) : exported;
  } finally {
    compiled.release();
  }
}

/** Comment lines naming the profile a filter is based on, for the pfc export. */
function profileNote(plan: SeccompPlan): string {
  const p = plan.profile!;
  const own = plan.rules.filter((r) => !r.fromProfile).length;
  return [
    `# based on the seccomp profile ${p.path}: ${plan.rules.length - own} of its rules, ${own} of the policy's own`,
    `# default action from the ${p.defaultFrom}, architectures from the ${p.architecturesFrom}`,
  ].join('\n');
}
