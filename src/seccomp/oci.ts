// Import of an OCI / Docker seccomp profile (config.json's `linux.seccomp`, or Docker's and
// podman's profile files) into a SeccompPlan, with the same selection rules as Docker and runc:
// includes/excludes by capabilities, architectures and minimum kernel. Anything in the profile
// this importer does not understand is an error, not ignored.
import { release } from 'node:os';
import type { SeccompAction, SeccompArgCondition, SeccompPlan, SeccompRule } from '../plan/types.js';
import { ERRNO, errnoName } from '../linux/constants.js';

export interface OciImportOptions {
  /** Capabilities the build keeps (bounding set), e.g. `CAP_SYS_ADMIN`; decides includes/excludes.caps. */
  caps: string[];
  /** Kernel release to compare includes.minKernel with; defaults to the running kernel. */
  kernel?: string;
}

/** Docker's architecture names (Go's GOARCH) for the native architecture; Stockade runs on x86_64. */
const NATIVE_DOCKER_ARCH = 'amd64';
const NATIVE_SCMP_ARCH = 'SCMP_ARCH_X86_64';

const OPS: Record<string, SeccompArgCondition['op']> = {
  SCMP_CMP_NE: 'ne',
  SCMP_CMP_LT: 'lt',
  SCMP_CMP_LE: 'le',
  SCMP_CMP_EQ: 'eq',
  SCMP_CMP_GE: 'ge',
  SCMP_CMP_GT: 'gt',
  SCMP_CMP_MASKED_EQ: 'masked_eq',
};

const PROFILE_KEYS = new Set(['defaultAction', 'defaultErrnoRet', 'defaultErrno', 'architectures', 'archMap', 'syscalls', 'flags']);
const SYSCALL_KEYS = new Set(['names', 'name', 'action', 'errnoRet', 'errno', 'args', 'includes', 'excludes', 'comment']);
const FILTER_KEYS = new Set(['caps', 'arches', 'minKernel']);
const ARG_KEYS = new Set(['index', 'value', 'valueTwo', 'op']);

class ProfileError extends Error {
  constructor(where: string, message: string) {
    super(`seccomp profile: ${where}: ${message}`);
  }
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(value: Json, allowed: Set<string>, where: string): void {
  for (const key of Object.keys(value)) if (!allowed.has(key)) throw new ProfileError(where, `unsupported field '${key}'`);
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new ProfileError(where, 'expected a list of strings');
  return value as string[];
}

/** `SCMP_ARCH_X86_64` -> `x86_64`, libseccomp's name. */
function scmpArchName(arch: string, where: string): string {
  if (!arch.startsWith('SCMP_ARCH_')) throw new ProfileError(where, `unknown architecture '${arch}'`);
  return arch.slice('SCMP_ARCH_'.length).toLowerCase();
}

function errnoValue(value: unknown, where: string): number {
  if (typeof value === 'string') {
    const n = ERRNO[value];
    if (n === undefined) throw new ProfileError(where, `unknown errno '${value}'`);
    return n;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 4095) {
    throw new ProfileError(where, `errno ${JSON.stringify(value)} is not an integer in 0..4095`);
  }
  return value;
}

/**
 * The errno of an ERRNO action: OCI's number (`errnoRet`), or containers/common's name for it
 * (`errno`); when both are given they must agree.
 */
function errnoOf(number: unknown, name: unknown, where: string): number | undefined {
  const fromNumber = number === undefined || number === null ? undefined : errnoValue(number, where);
  const fromName = name === undefined || name === null ? undefined : errnoValue(name, where);
  if (fromNumber !== undefined && fromName !== undefined && fromNumber !== fromName) {
    throw new ProfileError(where, `errno ${JSON.stringify(name)} and errno number ${fromNumber} disagree`);
  }
  return fromNumber ?? fromName;
}

function action(name: unknown, errno: number | undefined, where: string): SeccompAction {
  switch (name) {
    case 'SCMP_ACT_ALLOW':
      return { kind: 'allow' };
    case 'SCMP_ACT_ERRNO': {
      // Docker and runc: an ERRNO action without errnoRet returns EPERM.
      const value = errno ?? ERRNO.EPERM!;
      return { kind: 'errno', errno: value, name: errnoName(value) };
    }
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return { kind: 'kill_thread' };
    case 'SCMP_ACT_KILL_PROCESS':
      return { kind: 'kill_process' };
    case 'SCMP_ACT_TRAP':
      return { kind: 'trap' };
    case 'SCMP_ACT_LOG':
      return { kind: 'log' };
    default:
      throw new ProfileError(where, `unsupported action ${JSON.stringify(name)} (Stockade has no tracer or notify listener)`);
  }
}

/** Compares kernel releases by their numeric components: `6.18.44-xyz` >= `5.8`. */
export function kernelAtLeast(kernel: string, minimum: string): boolean {
  const parts = (v: string) => (v.match(/^\d+(\.\d+)*/)?.[0] ?? '0').split('.').map(Number);
  const have = parts(kernel);
  const want = parts(minimum);
  for (let i = 0; i < Math.max(have.length, want.length); i++) {
    const a = have[i] ?? 0;
    const b = want[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** Whether a syscalls[] entry applies, by Docker's rules. Both sides are checked before either decides. */
function applies(entry: Json, caps: Set<string>, kernel: string, where: string): boolean {
  const sides = (['includes', 'excludes'] as const).map((side) => {
    const filter = entry[side];
    if (filter === undefined || filter === null) return { caps: [], arches: [], minKernel: undefined };
    if (!isObject(filter)) throw new ProfileError(`${where}.${side}`, 'expected an object');
    checkKeys(filter, FILTER_KEYS, `${where}.${side}`);
    const minKernel = filter.minKernel;
    if (minKernel !== undefined && typeof minKernel !== 'string') throw new ProfileError(`${where}.${side}.minKernel`, 'expected a string');
    return { caps: stringList(filter.caps, `${where}.${side}.caps`), arches: stringList(filter.arches, `${where}.${side}.arches`), minKernel };
  });
  const [includes, excludes] = sides;
  if (excludes.minKernel) throw new ProfileError(`${where}.excludes.minKernel`, 'not supported (Docker ignores it too)');
  if (!includes.caps.every((c) => caps.has(c))) return false;
  if (includes.arches.length > 0 && !includes.arches.includes(NATIVE_DOCKER_ARCH)) return false;
  if (includes.minKernel && !kernelAtLeast(kernel, includes.minKernel)) return false;
  if (excludes.caps.some((c) => caps.has(c))) return false;
  if (excludes.arches.includes(NATIVE_DOCKER_ARCH)) return false;
  return true;
}

function conditions(value: unknown, where: string): SeccompArgCondition[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ProfileError(where, 'expected a list');
  return value.map((arg, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(arg)) throw new ProfileError(at, 'expected an object');
    checkKeys(arg, ARG_KEYS, at);
    const { index, value: v, valueTwo, op } = arg;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) throw new ProfileError(at, 'index must be 0..5');
    const mapped = typeof op === 'string' ? OPS[op] : undefined;
    if (!mapped) throw new ProfileError(at, `unknown operator ${JSON.stringify(op)}`);
    const num = (x: unknown, what: string): number => {
      if (x === undefined || x === null) return 0;
      if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new ProfileError(at, `${what} must be an integer`);
      return x;
    };
    // In OCI's masked_eq, `value` is the mask and `valueTwo` what the masked argument must equal.
    return mapped === 'masked_eq'
      ? { index, op: mapped, mask: num(v, 'value'), value: num(valueTwo, 'valueTwo') }
      : { index, op: mapped, value: num(v, 'value') };
  });
}

function architectures(profile: Json): string[] {
  if (profile.archMap !== undefined && profile.archMap !== null) {
    if (!Array.isArray(profile.archMap)) throw new ProfileError('archMap', 'expected a list');
    const native = profile.archMap.find((entry) => isObject(entry) && entry.architecture === NATIVE_SCMP_ARCH) as Json | undefined;
    if (!native) return ['x86_64'];
    return ['x86_64', ...stringList(native.subArchitectures, 'archMap.subArchitectures').map((a) => scmpArchName(a, 'archMap'))];
  }
  const listed = stringList(profile.architectures, 'architectures').map((a) => scmpArchName(a, 'architectures'));
  return listed.length > 0 ? listed : ['x86_64'];
}

/** Converts a parsed OCI/Docker seccomp profile into a SeccompPlan for this machine and capability set. */
export function importOciProfile(json: unknown, options: OciImportOptions): SeccompPlan {
  if (!isObject(json)) throw new ProfileError('top level', 'expected an object');
  checkKeys(json, PROFILE_KEYS, 'top level');
  if (stringList(json.flags, 'flags').length > 0) throw new ProfileError('flags', 'seccomp filter flags are not supported');
  const caps = new Set(options.caps.map((c) => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`)));
  const kernel = options.kernel ?? release();

  const defaultErrno = errnoOf(json.defaultErrnoRet, json.defaultErrno, 'defaultErrnoRet');
  const defaultAction = action(json.defaultAction, defaultErrno, 'defaultAction');
  // Skipping a rule for a syscall libseccomp does not know is safe only when that leaves the
  // syscall no more open than the rule would: for allow rules, or when the default denies too.
  const defaultDenies = defaultAction.kind !== 'allow' && defaultAction.kind !== 'log';

  if (!Array.isArray(json.syscalls)) throw new ProfileError('syscalls', 'expected a list');
  const rules: SeccompRule[] = [];
  json.syscalls.forEach((entry, i) => {
    const where = `syscalls[${i}]`;
    if (!isObject(entry)) throw new ProfileError(where, 'expected an object');
    checkKeys(entry, SYSCALL_KEYS, where);
    // Every entry is checked, also those that do not apply here: a profile is valid or not
    // whatever capabilities the policy keeps.
    const names = [...stringList(entry.names, `${where}.names`), ...(typeof entry.name === 'string' ? [entry.name] : [])];
    if (names.length === 0) throw new ProfileError(where, 'no syscall names');
    const ruleAction = action(entry.action, errnoOf(entry.errnoRet, entry.errno, `${where}.errnoRet`), `${where}.action`);
    const args = conditions(entry.args, `${where}.args`);
    if (!applies(entry, caps, kernel, where)) return;
    const optional = ruleAction.kind === 'allow' || defaultDenies;
    // As runc does: conditions on distinct arguments must all hold (one rule); several on the
    // same argument cannot be ANDed by libseccomp, so each becomes a rule of its own.
    const indexes = args.map((a) => a.index);
    const groups = new Set(indexes).size === indexes.length ? [args] : args.map((a) => [a]);
    for (const syscall of names) {
      for (const group of groups) rules.push({ syscall, action: ruleAction, args: group, optional });
    }
  });
  return { defaultAction, architectures: architectures(json), rules };
}
