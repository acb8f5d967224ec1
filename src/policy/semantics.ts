// Checks the schema cannot express: names that must be known, combinations that are
// impossible or unsafe. They run on a schema-valid policy, or on what is left of one once the
// values the schema rejects are taken out.
import type { Diagnostic } from './errors.js';
import { schemaDiagnostics, schemaViolations, type Locate } from './validate.js';
import { pointerJoin, type Json } from './source.js';
import type { Policy, RlimitValue } from './types.js';
import { isKnownSyscall } from '../linux/syscalls.js';
import { CAPABILITIES } from '../linux/capabilities.js';
import { ERRNO } from '../linux/constants.js';
import { RESERVED_TARGETS } from './lists.js';

const BUILD_DIR_TOKENS = new Set(['{name}']);
const ENV_TOKENS = new Set(['{cores}', '{name}', '{build_dir}']);

export function networkMode(policy: Policy): 'none' | 'slirp' | 'host' {
  const n = policy.network;
  return n === undefined ? 'none' : typeof n === 'string' ? n : n.mode;
}

const SIZE_SCALES: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** A schema-valid size (bytes, or digits with a K/M/G/T suffix) in bytes. */
export function sizeInBytes(value: number | string): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)([KMGT]?)$/.exec(value);
  if (!m) throw new Error(`bad size ${value}`);
  return Number(m[1]) * SIZE_SCALES[m[2]];
}

function limitValue(v: RlimitValue): number {
  return v === 'unlimited' ? Infinity : v;
}

type Report = (pointer: string, message: string, atKey?: boolean) => void;
type Check = (policy: Policy, error: Report, locate: Locate) => void;

/** Each check is independent of the others, so one can be left out when it would read a value the schema rejected. */
const CHECKS: Check[] = [
  function pool(policy, error) {
    if (policy.users?.group !== undefined && policy.users.range !== undefined) {
      error('/users/range', 'users: give either group or range, not both', true);
    }
    const owner = policy.outputs?.owner;
    const range = policy.users?.range;
    if (owner && range && owner.uid >= range.first && owner.uid < range.first + range.count) {
      // A later build running as that UID could rewrite every output handed over before.
      error('/outputs/owner/uid', `outputs.owner.uid: ${owner.uid} is a build user of the pool (users.range ${range.first}-${range.first + range.count - 1})`);
    }
  },

  function network(policy, error, locate) {
    const mode = networkMode(policy);
    if (mode !== 'none' && policy.fixed_output !== true) {
      const why = 'needs fixed_output: true (only fixed-output builds, checked by hash, may reach a network)';
      if (policy.fixed_output === false) {
        // Point at the value the author set, which may sit in another file than the network.
        const network = locate('/network');
        error('/fixed_output', `fixed_output: false, but network: ${mode} (set at ${network.file}:${network.line}:${network.col}) ${why}`);
      } else {
        error('/network', `network: ${mode} ${why}`);
      }
    }
    if (typeof policy.network === 'object' && policy.network.allow_host_loopback && mode !== 'slirp') {
      error('/network/allow_host_loopback', 'network.allow_host_loopback applies only to network mode slirp', true);
    }
  },

  function etcFiles(policy, error) {
    const mode = networkMode(policy);
    const etc = policy.filesystem?.etc;
    if (etc?.resolv_conf === 'slirp' && mode !== 'slirp') {
      error('/filesystem/etc/resolv_conf', 'filesystem.etc.resolv_conf: slirp needs network: slirp');
    }
    if (etc?.hosts === 'slirp' && mode !== 'slirp') {
      error('/filesystem/etc/hosts', 'filesystem.etc.hosts: slirp needs network: slirp');
    }
    if (etc?.files) {
      for (const path of Object.keys(etc.files)) {
        // Unset keys count with the planner's defaults: passwd, group and hosts are generated unless set to none.
        const generated = { '/etc/passwd': etc.passwd ?? 'generated', '/etc/group': etc.group ?? 'generated', '/etc/hosts': etc.hosts ?? 'localhost', '/etc/resolv.conf': etc.resolv_conf ?? 'none' }[path];
        if (generated !== undefined && generated !== 'none') {
          error(`/filesystem/etc/files/${path.replace(/~/g, '~0').replace(/\//g, '~1')}`, `filesystem.etc.files: ${path} is already generated (set its own key to none first)`, true);
        }
      }
    }
  },

  function buildDir(policy, error) {
    const buildDir = policy.filesystem?.build_dir;
    if (buildDir === undefined) return;
    for (const token of buildDir.match(/\{[^}]*\}/g) ?? []) {
      if (!BUILD_DIR_TOKENS.has(token)) error('/filesystem/build_dir', `filesystem.build_dir: unknown placeholder ${token} (only {name})`);
    }
    if (/(^|\/)\.\.(\/|$)/.test(buildDir)) error('/filesystem/build_dir', "filesystem.build_dir: must not contain '..'");
    if (buildDir === '/tmp' || buildDir === '/') error('/filesystem/build_dir', `filesystem.build_dir: must be a directory of its own, not ${buildDir}`);
  },

  function paths(policy, error) {
    const targets = new Map<string, number>();
    (policy.filesystem?.paths ?? []).forEach((p, i) => {
      const target = normalise(p.target ?? p.source);
      if (RESERVED_TARGETS.includes(target)) {
        error(`/filesystem/paths/${i}/${p.target ? 'target' : 'source'}`, `filesystem.paths[${i}]: ${target} is set up by Stockade itself and cannot be bound over`);
      }
      const previous = targets.get(target);
      if (previous !== undefined) error(`/filesystem/paths/${i}`, `filesystem.paths[${i}]: target ${target} is already bound by filesystem.paths[${previous}]`);
      else targets.set(target, i);
    });
  },

  function devices(policy, error) {
    const seen = new Map<string, number>();
    (policy.devices ?? []).forEach((d, i) => {
      const name = typeof d === 'string' ? d : d.name;
      const previous = seen.get(name);
      if (previous !== undefined) error(`/devices/${i}`, `devices[${i}]: '${name}' is already listed at devices[${previous}]`);
      else seen.set(name, i);
    });
  },

  function capabilities(policy, error) {
    for (const [pointer, names] of [['/capabilities/bounding', policy.capabilities?.bounding], ['/capabilities/ambient', policy.capabilities?.ambient]] as const) {
      (names ?? []).forEach((name, i) => {
        if (!(CAPABILITIES as readonly string[]).includes(name)) error(`${pointer}/${i}`, `${pointer.slice(1).replace('/', '.')}[${i}]: unknown capability '${name}'`);
      });
    }
    const bounding = new Set(policy.capabilities?.bounding ?? []);
    (policy.capabilities?.ambient ?? []).forEach((name, i) => {
      if (!bounding.has(name)) error(`/capabilities/ambient/${i}`, `capabilities.ambient[${i}]: '${name}' must also be in capabilities.bounding`);
    });
  },

  function seccompErrno(policy, error) {
    const name = policy.seccomp?.errno;
    if (name !== undefined && !(name in ERRNO)) error('/seccomp/errno', `seccomp.errno: unknown errno '${name}'`);
  },

  function seccompDeny(policy, error) {
    (policy.seccomp?.deny ?? []).forEach((name, i) => {
      if (!isKnownSyscall(name)) error(`/seccomp/deny/${i}`, `seccomp.deny[${i}]: unknown syscall '${name}'`);
    });
  },

  function seccompRules(policy, error) {
    (policy.seccomp?.rules ?? []).forEach((rule, i) => {
      const names = Array.isArray(rule.syscall) ? rule.syscall : [rule.syscall];
      names.forEach((name, j) => {
        if (!isKnownSyscall(name) && !rule.optional) {
          const pointer = Array.isArray(rule.syscall) ? `/seccomp/rules/${i}/syscall/${j}` : `/seccomp/rules/${i}/syscall`;
          error(pointer, `seccomp.rules[${i}].syscall: unknown syscall '${name}' (mark the rule optional: true to skip it where unknown)`);
        }
      });
      if (rule.errno !== undefined && !(rule.errno in ERRNO)) error(`/seccomp/rules/${i}/errno`, `seccomp.rules[${i}].errno: unknown errno '${rule.errno}'`);
      if (rule.errno !== undefined && rule.action !== 'errno') {
        error(`/seccomp/rules/${i}/errno`, `seccomp.rules[${i}]: errno is only meaningful with action: errno`, true);
      }
      (rule.args ?? []).forEach((arg, k) => {
        const at = `/seccomp/rules/${i}/args/${k}`;
        if (arg.op === 'masked_eq' && arg.mask === undefined) error(at, `seccomp.rules[${i}].args[${k}]: masked_eq needs a mask`);
        if (arg.op !== 'masked_eq' && arg.mask !== undefined) error(`${at}/mask`, `seccomp.rules[${i}].args[${k}]: mask is only meaningful with op: masked_eq`, true);
        if (!Number.isSafeInteger(arg.value) || (arg.mask !== undefined && !Number.isSafeInteger(arg.mask))) {
          error(at, `seccomp.rules[${i}].args[${k}]: values above 2^53 cannot be represented exactly`);
        }
      });
    });
  },

  function noNewPrivs(policy, error) {
    if (policy.no_new_privs !== false) return;
    if (policy.seccomp) {
      error('/no_new_privs', 'no_new_privs: false is impossible with seccomp (an unprivileged builder can only load a filter under no_new_privs)');
    }
    if (policy.landlock) {
      error('/no_new_privs', 'no_new_privs: false is impossible with landlock (an unprivileged builder can only restrict itself under no_new_privs)');
    }
  },

  function limits(policy, error) {
    for (const [resource, value] of Object.entries(policy.limits?.rlimits ?? {})) {
      if (typeof value === 'object' && limitValue(value.soft) > limitValue(value.hard)) {
        error(`/limits/rlimits/${resource}`, `limits.rlimits.${resource}: soft limit ${value.soft} is above hard limit ${value.hard}`);
      }
    }
    const sizes: [string, number | string | undefined][] = [
      ['/limits/cgroup/memory', policy.limits?.cgroup?.memory],
      ['/limits/output_bytes', policy.limits?.output_bytes],
      ['/limits/build_dir_bytes', policy.limits?.build_dir_bytes],
    ];
    for (const [pointer, size] of sizes) {
      // Beyond 2^53 a size is no longer an exact number (and not a size any host has).
      if (size !== undefined && sizeInBytes(size) > Number.MAX_SAFE_INTEGER) error(pointer, `${pointer.slice(1).replace(/\//g, '.')}: ${size} is more than 2^53 bytes`);
    }
  },

  function environment(policy, error) {
    for (const [name, value] of Object.entries(policy.environment?.set ?? {})) {
      for (const token of value.match(/\{[a-z_]*\}/g) ?? []) {
        if (!ENV_TOKENS.has(token)) error(`/environment/set/${name}`, `environment.set.${name}: unknown placeholder ${token} (use {cores}, {name} or {build_dir})`);
      }
    }
  },
];

/** The semantic errors of a schema-valid policy. */
export function semanticDiagnostics(policy: Policy, locate: Locate): Diagnostic[] {
  const out: Diagnostic[] = [];
  const error = reporter(out, locate);
  for (const check of CHECKS) check(policy, error, locate);
  return out;
}

function reporter(out: Diagnostic[], locate: Locate): Report {
  return (pointer, message, atKey = false) => out.push({ ...locate(pointer, atKey), message });
}

/** Rounds of taking rejected values out; each round follows from the last (a map left without a required key). */
const MAX_PRUNE_ROUNDS = 8;

/**
 * Every schema error of a merged policy and, alongside them, the semantic errors the schema
 * errors do not hide: the checks run on the policy without what the schema rejected, and a check
 * that read a rejected value (now missing, so it would judge a default the author did not write)
 * reports nothing. Keys the schema does not allow hide nothing.
 */
export function policyDiagnostics(value: Json, locate: Locate): Diagnostic[] {
  const schemaErrors = schemaDiagnostics(value, locate);
  if (schemaErrors.length === 0) return semanticDiagnostics(value as unknown as Policy, locate);
  const rest = structuredClone(value);
  const rejected = new Set<string>();
  for (let round = 0; ; round++) {
    const violations = schemaViolations(rest);
    if (!violations) break;
    if (round === MAX_PRUNE_ROUNDS || violations.values.includes('')) return schemaErrors;
    for (const pointer of violations.keys) remove(rest, pointer);
    for (const pointer of violations.values) {
      rejected.add(pointer);
      remove(rest, pointer);
    }
  }
  const out = [...schemaErrors];
  for (const check of CHECKS) {
    const found: Diagnostic[] = [];
    const reads = new Set<string>();
    check(readTracked(rest, '', reads) as unknown as Policy, reporter(found, locate), locate);
    if (![...reads].some((pointer) => rejected.has(pointer))) out.push(...found);
  }
  return out;
}

function remove(root: Json, pointer: string): void {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = parts.pop()!;
  let node: Json | undefined = root;
  for (const part of parts) node = node === null || typeof node !== 'object' ? undefined : Array.isArray(node) ? node[Number(part)] : node[part];
  if (node !== null && typeof node === 'object' && !Array.isArray(node)) delete node[last];
}

/** A view of `value` that adds the pointer of every key read through it to `reads`. */
function readTracked(value: Json, pointer: string, reads: Set<string>): Json {
  if (value === null || typeof value !== 'object') return value;
  return new Proxy(value, {
    get(target, key, receiver) {
      const child = Reflect.get(target, key, receiver) as Json;
      if (typeof key !== 'string') return child;
      const at = pointerJoin(pointer, key);
      reads.add(at);
      return readTracked(child, at, reads);
    },
    has(target, key) {
      if (typeof key === 'string') reads.add(pointerJoin(pointer, key));
      return Reflect.has(target, key);
    },
  });
}

/** Whether a normalised absolute path is `prefix` or lies below it. */
export function isUnder(path: string, prefix: string): boolean {
  const p = normalise(prefix);
  return path === p || path.startsWith(p === '/' ? '/' : p + '/');
}

export function normalise(path: string): string {
  const trimmed = path.replace(/\/+/g, '/').replace(/\/$/, '');
  return trimmed === '' ? '/' : trimmed;
}
