// policy + build spec → Plan: a pure function that makes every decision explicit.
import { posix } from 'node:path';
import type { LoadedPolicy } from '../policy/load.js';
import type { BuildSpec, Policy } from '../policy/types.js';
import { isCharDevice } from '../policy/lists.js';
import { networkMode, normalise, sizeInBytes as bytes } from '../policy/semantics.js';
import { DEFAULTS } from './defaults.js';
import { describeSource } from './describe.js';
import { outputDirs } from './outputs.js';
import { checkSpec, envAllowed, positionsOf, SpecRefused } from './spec-check.js';
import type { BindMount, BindSource, DeviceNode, EtcFile, FieldOrigin, LandlockPlan, Limits, Mount, Plan, SeccompPlan } from './types.js';

/** What plan() needs of a loaded policy: what loadPolicy returns, or the plan cache's copy of it. */
export type PlanInput = Pick<LoadedPolicy, 'policy' | 'chain' | 'seccomp' | 'origins'>;

/** What the build's caller adds; everything about the policy comes from its LoadedPolicy. */
export interface PlanContext {
  /** The caller's environment, for `environment.pass`. */
  callerEnv?: Record<string, string | undefined>;
  /** How the spec is named in refusals. */
  specSource?: string;
  /** libseccomp's name of the host's architecture, for a policy's `native`; without it `native` stays for libseccomp to resolve. */
  nativeArch?: string;
  /** The build directory inside the sandbox instead of filesystem.build_dir (a remote action's input root, `stockade runner`). */
  buildDir?: string;
}

function octal(mode: string): number {
  return parseInt(mode, 8);
}

function bind(source: BindSource, target: string, readonly: boolean, role: string, extra: Partial<BindMount> = {}): BindMount {
  return { source, target, type: 'bind', readonly, nosuid: true, nodev: true, noexec: false, role, ...extra };
}

/** The policy field at `pointer` and where it was written; `default` when no file of the chain sets it. */
function policyOrigin(loaded: PlanInput, pointer: string, unset = pointer): FieldOrigin {
  const origin = loaded.origins.get(pointer);
  return origin ? { pointer, at: { file: origin.file, line: origin.line, col: origin.col } } : { pointer: unset, at: 'default' };
}

/** The loader's filter with `native` resolved to the host's architecture, when the caller names it. */
function planSeccomp(loaded: PlanInput, nativeArch: string | undefined): SeccompPlan | null {
  if (loaded.policy.seccomp && !loaded.seccomp) throw new Error('stockade: the policy has a seccomp section but no planned filter (plan what loadPolicy returned)');
  if (!loaded.seccomp || nativeArch === undefined) return loaded.seccomp;
  return { ...loaded.seccomp, architectures: [...new Set(loaded.seccomp.architectures.map((a) => (a === 'native' ? nativeArch : a)))] };
}

function planLandlock(policy: Policy, buildDir: string, spec: BuildSpec): LandlockPlan | null {
  const l = policy.landlock;
  if (!l) return null;
  const expand = (path: string): string[] =>
    path === '{build_dir}' ? [buildDir] : path === '{inputs}' ? spec.inputs ?? [] : path === '{outputs}' ? outputDirs(spec.outputs ?? []) : [path];
  const access = new Map<string, Set<'read' | 'write' | 'execute'>>();
  for (const kind of ['read', 'write', 'execute'] as const) {
    for (const path of (l[kind] ?? []).flatMap(expand)) {
      const key = normalise(path);
      if (!access.has(key)) access.set(key, new Set());
      access.get(key)!.add(kind);
    }
  }
  const order = ['read', 'write', 'execute'] as const;
  return {
    compat: l.compat ?? 'require',
    paths: [...access].map(([path, set]) => ({ path, access: order.filter((a) => set.has(a)) })),
    ...(l.tcp ? { tcp: { bind: l.tcp.bind ?? [], connect: l.tcp.connect ?? [] } } : {}),
    scopes: l.scope ?? [],
  };
}

function planLimits(policy: Policy): Limits {
  const rlimits: Limits['rlimits'] = {};
  for (const [name, value] of Object.entries(policy.limits?.rlimits ?? {})) {
    rlimits[name] = typeof value === 'object' ? { soft: value.soft, hard: value.hard } : { soft: value, hard: value };
  }
  const c = policy.limits?.cgroup ?? {};
  const cgroup: Limits['cgroup'] = {};
  if (c.pids !== undefined) cgroup.pids = c.pids;
  if (c.memory !== undefined) cgroup.memoryBytes = bytes(c.memory);
  if (c.cpu !== undefined) cgroup.cpu = { quotaUs: Math.round(c.cpu * 100000), periodUs: 100000 };
  const l = policy.limits ?? {};
  return {
    rlimits,
    cgroup,
    maxInputs: l.inputs ?? DEFAULTS.maxInputs,
    outputBytes: l.output_bytes === undefined ? null : bytes(l.output_bytes),
    buildDirBytes: l.build_dir_bytes === undefined ? null : bytes(l.build_dir_bytes),
  };
}

function planEtc(policy: Policy, identity: Plan['identity']): EtcFile[] {
  const etc = policy.filesystem?.etc ?? {};
  const files: EtcFile[] = [];
  const { passwd, groupName } = identity;
  if ((etc.passwd ?? 'generated') === 'generated') {
    files.push({
      path: '/etc/passwd',
      content: [`${passwd.name}:x:`, { id: 'uid' }, ':', { id: 'gid' }, `:${passwd.gecos}:${passwd.home}:${passwd.shell}\nnobody:x:65534:65534:Nobody:/:/noshell\n`],
      mode: 0o444,
    });
  }
  if ((etc.group ?? 'generated') === 'generated') {
    files.push({ path: '/etc/group', content: [`${groupName}:!:`, { id: 'gid' }, ':\n'], mode: 0o444 });
  }
  const hosts = etc.hosts ?? 'localhost';
  if (hosts !== 'none') {
    const slirp = hosts === 'slirp' ? '10.0.2.2 host.slirp\nfd00::2 host.slirp\n' : '';
    files.push({ path: '/etc/hosts', content: [`127.0.0.1 localhost\n::1 localhost\n${slirp}`], mode: 0o444 });
  }
  if (etc.resolv_conf === 'slirp') files.push({ path: '/etc/resolv.conf', content: ['nameserver 10.0.2.3\n'], mode: 0o444 });
  for (const [path, content] of Object.entries(etc.files ?? {})) files.push({ path, content: [content], mode: 0o444 });
  for (const path of etc.host ?? []) files.push({ path, hostSource: path, optional: true, mode: 0o444 });
  return files;
}

function planDevices(loaded: PlanInput): { devices: DeviceNode[]; mounts: Mount[] } {
  const { policy } = loaded;
  const devices: DeviceNode[] = [];
  const mounts: Mount[] = [
    { target: '/dev', type: 'tmpfs', readonly: false, nosuid: true, nodev: true, noexec: true, options: 'mode=0755,size=65536k', role: 'dev' },
  ];
  const listed = (policy.devices ?? DEFAULTS.devices).map((d) => (typeof d === 'string' ? { name: d, optional: false } : { name: d.name, optional: d.optional ?? false }));
  for (const [i, { name, optional }] of listed.entries()) {
    if (isCharDevice(name)) {
      devices.push({ name, kind: 'bind', source: `/dev/${name}`, optional });
      // Device binds alone keep `dev`: they are the only nodes the build may open.
      mounts.push({
        source: { kind: 'host', path: `/dev/${name}` }, target: `/dev/${name}`, type: 'bind', readonly: false, nosuid: true, nodev: false, noexec: true,
        kind: 'file', optional, role: 'device', origin: policyOrigin(loaded, `/devices/${i}`, '/devices'),
      });
    } else if (name === 'pts') {
      mounts.push({ target: '/dev/pts', type: 'devpts', readonly: false, nosuid: true, nodev: false, noexec: true, options: 'newinstance,ptmxmode=0666,mode=0620', role: 'dev' });
      devices.push({ name: 'ptmx', kind: 'symlink', source: 'pts/ptmx', optional: false });
    } else if (name === 'shm') {
      mounts.push({ target: '/dev/shm', type: 'tmpfs', readonly: false, nosuid: true, nodev: true, noexec: false, options: 'mode=1777', role: 'dev' });
    } else if (name === 'fd') {
      devices.push({ name: 'fd', kind: 'symlink', source: '/proc/self/fd', optional: false });
      ['stdin', 'stdout', 'stderr'].forEach((stdio, fd) => devices.push({ name: stdio, kind: 'symlink', source: `/proc/self/fd/${fd}`, optional: false }));
    } else {
      // A device the schema gains must be planned here: the compiler refuses this line until it is.
      const unplanned: never = name;
      throw new Error(`stockade: no plan for device ${String(unplanned)}`);
    }
  }
  return { devices, mounts };
}

function buildEnvironment(policy: Policy, spec: BuildSpec, buildDir: string, cores: number, callerEnv: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  const substitute = (v: string) => v.replace(/\{cores\}/g, String(cores)).replace(/\{name\}/g, spec.name).replace(/\{build_dir\}/g, buildDir);
  for (const [name, value] of Object.entries(policy.environment?.set ?? {})) env[name] = substitute(value);
  const allow = policy.environment?.spec_allow ?? [];
  for (const [name, value] of Object.entries(spec.env ?? {})) {
    if (envAllowed(name, allow)) env[name] = value;
  }
  for (const name of policy.environment?.build_dir_vars ?? DEFAULTS.buildDirVars) env[name] = buildDir;
  // Last, as guix-daemon sets a fixed-output derivation's impureEnvVars: the caller's value wins.
  for (const name of policy.environment?.pass ?? []) {
    const value = callerEnv[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * An outputs directory is the build's own: it may not be where something else is mounted (it
 * would hide it, or be hidden), nor inside an input (read-only, and the host's); an output is
 * made by the builder, so it cannot be an input too.
 */
function refuseSharedOutputDirs(dirs: readonly string[], outputs: readonly string[], mounts: readonly Mount[], specSource = 'build spec'): void {
  const problems: string[] = [];
  const targets = new Map(mounts.filter((m) => m.role !== 'outputs-dir').map((m) => [m.target, m]));
  const inputs = new Set(mounts.filter((m) => m.role === 'input').map((m) => m.target));
  // Linear in the outputs and their depth, however many there are.
  const firstOutput = new Map<string, string>();
  for (const output of outputs) if (!firstOutput.has(posix.dirname(output))) firstOutput.set(posix.dirname(output), output);
  for (const dir of dirs) {
    const output = firstOutput.get(dir)!;
    const there = targets.get(dir);
    if (there) problems.push(`output ${output}: its directory ${dir} is where ${there.role} ${describeSource(there)} is mounted; outputs are made in a directory of the build's own`);
    for (let up = posix.dirname(dir); ; up = posix.dirname(up)) {
      if (inputs.has(up)) {
        problems.push(`output ${output} lies inside input ${up}`);
        break;
      }
      if (up === '/') break;
    }
  }
  for (const output of outputs) if (inputs.has(output)) problems.push(`output ${output} is also an input`);
  if (problems.length) throw new SpecRefused(specSource, problems.map((text) => ({ pointer: '/outputs', text })));
}

/**
 * Resolves a loaded policy (as loadPolicy returns it: the merged policy, its extends chain, its
 * imported seccomp.profile) and a build spec into a Plan. Refuses a spec the policy does not allow.
 */
export function plan(loaded: PlanInput, specIn: BuildSpec, context: PlanContext = {}): Plan {
  const { policy, chain } = loaded;
  checkSpec(specIn, policy, context.specSource);
  const spec: BuildSpec = { args: [], env: {}, inputs: [], outputs: [], cores: 0, ...specIn };
  spec.inputs = spec.inputs!.map(normalise);
  spec.outputs = spec.outputs!.map(normalise);
  const fs = policy.filesystem ?? {};
  const cores = spec.cores ?? 0;
  const buildDir = context.buildDir ?? (fs.build_dir ?? DEFAULTS.buildDir).replace(/\{name\}/g, spec.name);
  // guix-daemon's guix-build-NAME.drv-0, -1…: a build dir named so counts up from its own 0.
  const base = posix.basename(buildDir);
  const hostDirPrefix = /-0$/.test(base) ? base.slice(0, -1) : `${base}-`;

  const u = policy.users ?? {};
  const identity: Plan['identity'] = {
    pool: u.range ? { kind: 'range', ...u.range } : { kind: 'group', group: u.group ?? DEFAULTS.users.group },
    stateDir: u.state_dir ?? DEFAULTS.users.stateDir,
    passwd: { ...DEFAULTS.users.passwd, ...u.passwd },
    groupName: u.group_name ?? DEFAULTS.users.groupName,
    supplementaryGroups: u.supplementary_groups ?? (u.range ? 'none' : DEFAULTS.users.supplementaryGroups),
  };

  const mounts: Mount[] = [];
  for (const [i, p] of (fs.paths ?? []).entries()) {
    mounts.push(bind({ kind: 'host', path: p.source }, p.target ?? p.source, p.readonly ?? true, 'path', {
      ...(p.optional ? { optional: true } : {}), origin: policyOrigin(loaded, `/filesystem/paths/${i}`),
    }));
  }
  const specPositions = positionsOf(specIn);
  for (const [i, input] of spec.inputs.entries()) {
    const pointer = `/inputs/${i}`;
    const at = specPositions?.(pointer) ?? context.specSource ?? 'build spec';
    mounts.push(bind({ kind: 'input', path: input }, input, true, 'input', { origin: { pointer, at } }));
  }
  // The builder makes each output in a private directory of the build's, bound where the
  // outputs go (guix's chroot store); only the declared names are handed over afterwards.
  const dirs = outputDirs(spec.outputs);
  for (const [index, dir] of dirs.entries()) mounts.push(bind({ kind: 'outputs-dir', index }, dir, false, 'outputs-dir', { kind: 'dir' }));
  const tmp = { ...DEFAULTS.tmp, ...fs.tmp };
  mounts.push({ target: '/tmp', type: 'tmpfs', readonly: false, nosuid: true, nodev: true, noexec: false, options: `mode=${tmp.mode.padStart(4, '0')},size=${tmp.size}`, role: 'tmp' });
  mounts.push(bind({ kind: 'build-dir' }, buildDir, false, 'build-dir', { kind: 'dir' }));
  if (policy.proc?.mount ?? true) {
    mounts.push({ target: '/proc', type: 'proc', readonly: false, nosuid: true, nodev: true, noexec: true, role: 'proc' });
  }
  const dev = planDevices(loaded);
  mounts.push(...dev.mounts);
  const etc = planEtc(policy, identity);
  for (const [i, path] of (fs.etc?.host ?? []).entries()) {
    mounts.push(bind({ kind: 'host', path }, path, true, 'etc', { optional: true, kind: 'file', origin: policyOrigin(loaded, `/filesystem/etc/host/${i}`) }));
  }

  refuseSharedOutputDirs(dirs, spec.outputs, mounts, context.specSource);

  // Parents before children, so that no mount hides another (an input under /tmp, say).
  // Depths counted once, not at each of the sort's n log n comparisons.
  const depths = new Map(mounts.map((m) => [m, m.target.split('/').filter(Boolean).length]));
  mounts.sort((a, b) => depths.get(a)! - depths.get(b)!);

  const mode = networkMode(policy);
  const root = { ...DEFAULTS.root, ...fs.root };
  return {
    version: 1,
    policy: {
      name: policy.name,
      description: policy.description ?? '',
      file: chain[0],
      fixedOutput: policy.fixed_output ?? false,
      chain,
    },
    build: {
      name: spec.name,
      builder: spec.builder,
      args: spec.args ?? [],
      dir: buildDir,
      hostParent: fs.build_dir_host ?? DEFAULTS.buildDirHost,
      hostDirPrefix,
      inputs: spec.inputs,
      outputs: spec.outputs,
      inputsUnder: (fs.inputs?.under ?? []).map(normalise),
      outputsUnder: (fs.outputs?.under ?? []).map(normalise),
      cores,
    },
    identity,
    namespaces: mode === 'host' ? ['pid', 'mount', 'uts', 'ipc', 'cgroup'] : ['pid', 'mount', 'uts', 'ipc', 'net', 'cgroup'],
    root: { size: root.size, mode: octal(root.mode), readonly: root.readonly },
    mounts,
    devices: dev.devices,
    etc,
    network: {
      mode,
      allowHostLoopback: typeof policy.network === 'object' ? policy.network.allow_host_loopback ?? false : false,
      vsock: typeof policy.network === 'object' ? policy.network.vsock ?? false : false,
    },
    hostname: policy.hostname ?? DEFAULTS.hostname,
    domainname: policy.domainname ?? DEFAULTS.domainname,
    environment: buildEnvironment(policy, spec, buildDir, cores, context.callerEnv ?? {}),
    capabilities: { bounding: policy.capabilities?.bounding ?? [], ambient: policy.capabilities?.ambient ?? [] },
    noNewPrivs: policy.no_new_privs ?? true,
    seccomp: planSeccomp(loaded, context.nativeArch),
    landlock: planLandlock(policy, buildDir, spec),
    limits: planLimits(policy),
    timeouts: { totalSeconds: policy.timeouts?.total ?? DEFAULTS.timeouts.total, maxSilentSeconds: policy.timeouts?.max_silent ?? DEFAULTS.timeouts.maxSilent },
    outputs: { ...DEFAULTS.outputs, owner: { ...(policy.outputs?.owner ?? DEFAULTS.outputs.owner) } },
    personality: policy.personality ?? [],
    oomScoreAdj: policy.oom_score_adj ?? DEFAULTS.oomScoreAdj,
  };
}
