// Landlock through its three syscalls. Every access right the kernel's ABI knows is handled,
// so what a plan does not grant is denied. What the kernel lacks is either refused
// (compat: require) or applied without and reported (compat: best-effort) — never dropped silently.
import { fstatSync } from 'node:fs';
import type { LandlockAccess, LandlockPlan } from '../plan/types.js';
import { ERRNO, OPEN_FLAGS, SYS } from './arch.js';
import { quote, renderFlags } from './errors.js';
import { check, lastErrno, libc, STRUCT_POINTER } from './lib.js';
import { close, open } from './libc.js';

type Right = { bit: bigint; abi: number };

/** Filesystem access rights and the Landlock ABI that introduced each. */
export const LANDLOCK_ACCESS_FS = {
  execute: { bit: 1n << 0n, abi: 1 },
  write_file: { bit: 1n << 1n, abi: 1 },
  read_file: { bit: 1n << 2n, abi: 1 },
  read_dir: { bit: 1n << 3n, abi: 1 },
  remove_dir: { bit: 1n << 4n, abi: 1 },
  remove_file: { bit: 1n << 5n, abi: 1 },
  make_char: { bit: 1n << 6n, abi: 1 },
  make_dir: { bit: 1n << 7n, abi: 1 },
  make_reg: { bit: 1n << 8n, abi: 1 },
  make_sock: { bit: 1n << 9n, abi: 1 },
  make_fifo: { bit: 1n << 10n, abi: 1 },
  make_block: { bit: 1n << 11n, abi: 1 },
  make_sym: { bit: 1n << 12n, abi: 1 },
  refer: { bit: 1n << 13n, abi: 2 },
  truncate: { bit: 1n << 14n, abi: 3 },
  ioctl_dev: { bit: 1n << 15n, abi: 5 },
} as const satisfies Record<string, Right>;

const LANDLOCK_ACCESS_NET = {
  bind_tcp: { bit: 1n << 0n, abi: 4 },
  connect_tcp: { bit: 1n << 1n, abi: 4 },
} as const satisfies Record<string, Right>;

const LANDLOCK_SCOPE = {
  'abstract-unix-socket': { bit: 1n << 0n, abi: 6 },
  signal: { bit: 1n << 1n, abi: 6 },
} as const satisfies Record<string, Right>;

type FsRight = keyof typeof LANDLOCK_ACCESS_FS;

/** What each plan access grants. */
const ACCESS_RIGHTS: Record<LandlockAccess, readonly FsRight[]> = {
  read: ['read_file', 'read_dir'],
  write: [
    'write_file', 'remove_dir', 'remove_file', 'make_char', 'make_dir', 'make_reg', 'make_sock',
    'make_fifo', 'make_block', 'make_sym', 'refer', 'truncate', 'ioctl_dev',
  ],
  execute: ['execute'],
};

/** The rights that make sense on a file that is not a directory (others make add_rule fail). */
const FILE_RIGHTS: readonly FsRight[] = ['execute', 'write_file', 'read_file', 'truncate', 'ioctl_dev'];

const LANDLOCK_CREATE_RULESET_VERSION = 1;
const LANDLOCK_RULE_PATH_BENEATH = 1;
const LANDLOCK_RULE_NET_PORT = 2;

const FS_FLAG_NAMES = Object.fromEntries(Object.entries(LANDLOCK_ACCESS_FS).map(([n, r]) => [n.toUpperCase(), r.bit]));
const NET_FLAG_NAMES = Object.fromEntries(Object.entries(LANDLOCK_ACCESS_NET).map(([n, r]) => [n.toUpperCase(), r.bit]));
const SCOPE_FLAG_NAMES = Object.fromEntries(Object.entries(LANDLOCK_SCOPE).map(([n, r]) => [n.toUpperCase(), r.bit]));

function syscall(nr: number, ...args: [string, unknown][]): number {
  return Number(libc().syscall(nr, ...args.flat()));
}

/** sizeof(struct landlock_ruleset_attr) by the ABI that last grew it: scoped (6), handled_access_net (4). */
const rulesetAttrSize = (abi: number) => (abi >= 6 ? 24 : abi >= 4 ? 16 : 8);

/** The kernel's Landlock ABI version, 0 when Landlock is absent or disabled. */
export function landlockAbi(): number {
  const abi = syscall(SYS.landlock_create_ruleset, ['void *', null], ['size_t', 0], ['uint32_t', LANDLOCK_CREATE_RULESET_VERSION]);
  if (abi >= 0) return abi;
  const errno = lastErrno();
  if (errno === ERRNO.ENOSYS || errno === ERRNO.EOPNOTSUPP) return 0;
  return check(abi, 'landlock_create_ruleset', () => 'NULL, 0, LANDLOCK_CREATE_RULESET_VERSION');
}

export interface LandlockRuleset {
  abi: number;
  handledFs: bigint;
  handledNet: bigint;
  scoped: bigint;
  /** Rights per path, before narrowing to file rights for paths that are not directories. */
  paths: { path: string; access: bigint }[];
  ports: { port: number; access: bigint }[];
  /** What the plan restricts that this ABI cannot: `fs:truncate`, `net:bind_tcp`, `scope:signal`… */
  dropped: string[];
}

const mask = (rights: Record<string, Right>, abi: number) =>
  Object.values(rights).reduce((m, r) => (r.abi <= abi ? m | r.bit : m), 0n);

/** Works out what a plan becomes under a given ABI (pure: no syscall). Throws for `require` when something is missing. */
export function planRuleset(plan: LandlockPlan, abi: number): LandlockRuleset {
  for (const scope of plan.scopes) if (!LANDLOCK_SCOPE[scope]) throw new Error(`landlock: unknown scope '${scope}'`);
  const dropped: string[] = [];
  if (abi === 0) {
    dropped.push('landlock');
  } else {
    for (const [name, right] of Object.entries(LANDLOCK_ACCESS_FS)) if (right.abi > abi) dropped.push(`fs:${name}`);
    if (plan.tcp) for (const [name, right] of Object.entries(LANDLOCK_ACCESS_NET)) if (right.abi > abi) dropped.push(`net:${name}`);
    for (const scope of plan.scopes) if (LANDLOCK_SCOPE[scope].abi > abi) dropped.push(`scope:${scope}`);
  }
  if (plan.compat === 'require' && dropped.length > 0) {
    throw new Error(
      `landlock: the kernel's ABI ${abi} cannot enforce ${dropped.join(', ')} and the policy requires it (compat: require)`,
    );
  }
  const handledFs = mask(LANDLOCK_ACCESS_FS, abi);
  const handledNet = plan.tcp ? mask(LANDLOCK_ACCESS_NET, abi) : 0n;
  const scoped = plan.scopes.reduce((m, s) => (LANDLOCK_SCOPE[s].abi <= abi ? m | LANDLOCK_SCOPE[s].bit : m), 0n);

  const paths = plan.paths.map(({ path, access }) => {
    let bits = 0n;
    for (const a of access) {
      const rights = ACCESS_RIGHTS[a];
      if (!rights) throw new Error(`landlock: unknown access '${a}' for ${quote(path)}`);
      for (const r of rights) bits |= LANDLOCK_ACCESS_FS[r].bit;
    }
    return { path, access: bits & handledFs };
  });
  const ports: { port: number; access: bigint }[] = [];
  if (plan.tcp && handledNet) {
    const byPort = new Map<number, bigint>();
    const add = (port: number, bit: bigint) => {
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`landlock: TCP port ${port} is outside 0..65535`);
      byPort.set(port, (byPort.get(port) ?? 0n) | bit);
    };
    for (const port of plan.tcp.bind) add(port, LANDLOCK_ACCESS_NET.bind_tcp.bit);
    for (const port of plan.tcp.connect) add(port, LANDLOCK_ACCESS_NET.connect_tcp.bit);
    for (const [port, access] of byPort) ports.push({ port, access });
  }
  return { abi, handledFs, handledNet, scoped, paths, ports, dropped };
}

function addRule(rulesetFd: number, type: number, attr: [string, object], describe: () => string): void {
  const rc = syscall(SYS.landlock_add_rule, ['int', rulesetFd], ['int', type], attr, ['uint32_t', 0]);
  check(rc, 'landlock_add_rule', describe);
}

const FILE_MASK = FILE_RIGHTS.reduce((m, r) => m | LANDLOCK_ACCESS_FS[r].bit, 0n);

/**
 * Restricts the calling thread (and what it later spawns or execs) to the plan. Landlock
 * needs NO_NEW_PRIVS or CAP_SYS_ADMIN first. Returns the ABI used and what was dropped.
 */
export function applyLandlock(plan: LandlockPlan): { abi: number; dropped: string[] } {
  const ruleset = planRuleset(plan, landlockAbi());
  if (ruleset.abi === 0) return { abi: 0, dropped: ruleset.dropped };

  // struct landlock_ruleset_attr grew with the ABI; pass the size this kernel knows.
  const attr = { handled_access_fs: ruleset.handledFs, handled_access_net: ruleset.handledNet, scoped: ruleset.scoped };
  const size = rulesetAttrSize(ruleset.abi);
  const rulesetFd = check(syscall(SYS.landlock_create_ruleset, [STRUCT_POINTER.landlockRulesetAttr, attr], ['size_t', size], ['uint32_t', 0]), 'landlock_create_ruleset', () =>
    `{fs=${renderFlags(ruleset.handledFs, FS_FLAG_NAMES)}, net=${renderFlags(ruleset.handledNet, NET_FLAG_NAMES)}, ` +
    `scoped=${renderFlags(ruleset.scoped, SCOPE_FLAG_NAMES)}}, ${size}, 0`,
  );
  try {
    for (const { path, access } of ruleset.paths) {
      const fd = open(path, OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_CLOEXEC);
      try {
        const allowed = fstatSync(fd).isDirectory() ? access : access & FILE_MASK;
        if (allowed === 0n) continue;
        const rule = { allowed_access: allowed, parent_fd: fd };
        addRule(rulesetFd, LANDLOCK_RULE_PATH_BENEATH, [STRUCT_POINTER.landlockPathBeneathAttr, rule], () => `${rulesetFd}, PATH_BENEATH, {${renderFlags(allowed, FS_FLAG_NAMES)}, ${quote(path)}}, 0`);
      } finally {
        close(fd);
      }
    }
    for (const { port, access } of ruleset.ports) {
      const rule = { allowed_access: access, port };
      addRule(rulesetFd, LANDLOCK_RULE_NET_PORT, [STRUCT_POINTER.landlockNetPortAttr, rule], () => `${rulesetFd}, NET_PORT, {${renderFlags(access, NET_FLAG_NAMES)}, ${port}}, 0`);
    }
    check(syscall(SYS.landlock_restrict_self, ['int', rulesetFd], ['uint32_t', 0]), 'landlock_restrict_self', () => `${rulesetFd}, 0`);
  } finally {
    close(rulesetFd);
  }
  return { abi: ruleset.abi, dropped: ruleset.dropped };
}
