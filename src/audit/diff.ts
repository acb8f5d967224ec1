// Two Plans compared section by section: every change, marked as weakening, strengthening
// or neutral for isolation. Works on Plans, not YAML text, so a refactored policy that
// resolves to the same sandbox shows no change.
import type { DeviceNode, EtcFile, Mount, Plan, Rlimit, SeccompAction, SeccompPlan, SeccompRule } from '../plan/types.js';
import { describeSource } from '../plan/describe.js';
import { DEFAULT_NOTE } from './index.js';
import { isUnder } from './rules/filesystem.js';
import { SECRET_NAME } from './rules/environment.js';
import { RULES } from './registry.js';
import type { AuditReport, Finding } from './types.js';

export type Effect = 'weakening' | 'strengthening' | 'neutral';

export interface Change {
  section: string;
  effect: Effect;
  description: string;
}

type Emit = (effect: Effect, description: string) => void;

/** Bigger is looser: 0 (never) and `unlimited` are the loosest of all. */
function looseness(value: number | 'unlimited' | undefined, zeroMeansNone = false): number {
  if (value === undefined || value === 'unlimited' || (zeroMeansNone && value === 0)) return Infinity;
  return value;
}

function compareLimit(emit: Emit, what: string, before: number | 'unlimited' | undefined, after: number | 'unlimited' | undefined, zeroMeansNone = false): void {
  const a = looseness(before, zeroMeansNone);
  const b = looseness(after, zeroMeansNone);
  if (a === b) return;
  const show = (v: number | 'unlimited' | undefined) => (v === undefined ? 'none' : zeroMeansNone && v === 0 ? '0 (none)' : String(v));
  emit(b > a ? 'weakening' : 'strengthening', `${what}: ${show(before)} → ${show(after)}`);
}

function compareSets(emit: Emit, what: string, before: readonly string[], after: readonly string[], addedEffect: Effect): void {
  const removedEffect: Effect = addedEffect === 'weakening' ? 'strengthening' : addedEffect === 'strengthening' ? 'weakening' : 'neutral';
  for (const x of after.filter((v) => !before.includes(v))) emit(addedEffect, `${what}: ${x} added`);
  for (const x of before.filter((v) => !after.includes(v))) emit(removedEffect, `${what}: ${x} removed`);
}

function byKey<T>(items: readonly T[], key: (item: T) => string): Map<string, T> {
  return new Map(items.map((item) => [key(item), item]));
}

function mountFlags(m: Mount): string {
  return `${m.type} ${describeSource(m)} ${m.readonly ? 'ro' : 'rw'}`;
}

/** Device nodes and /etc host files are compared in their own sections; the build dir by role, as its path follows the build's name. */
function mountKey(m: Mount): string {
  return m.role === 'build-dir' ? 'build-dir' : m.target;
}

function diffMounts(emit: Emit, before: Mount[], after: Mount[]): void {
  const own = (mounts: Mount[]) => byKey(mounts.filter((m) => m.role !== 'device' && m.role !== 'etc'), mountKey);
  const a = own(before);
  const b = own(after);
  for (const [key, m] of b) {
    const old = a.get(key);
    if (!old) {
      emit(m.type === 'bind' ? 'weakening' : 'neutral', `${m.target} added (${mountFlags(m)}, ${m.role})`);
      continue;
    }
    const where = m.role === 'build-dir' ? `build dir ${m.target}` : m.target;
    if (old.target !== m.target || describeSource(old) !== describeSource(m) || old.type !== m.type) emit('neutral', `${where}: ${old.type} ${describeSource(old)} at ${old.target} → ${m.type} ${describeSource(m)} at ${m.target}`);
    if (old.readonly !== m.readonly) emit(m.readonly ? 'strengthening' : 'weakening', `${where}: ${old.readonly ? 'read-only' : 'writable'} → ${m.readonly ? 'read-only' : 'writable'}`);
    for (const flag of ['nosuid', 'nodev', 'noexec'] as const) {
      if (old[flag] !== m[flag]) emit(m[flag] ? 'strengthening' : 'weakening', `${where}: ${flag} ${m[flag] ? 'set' : 'dropped'}`);
    }
    if ((old.options ?? '') !== (m.options ?? '')) emit('neutral', `${where}: options ${old.options ?? '(none)'} → ${m.options ?? '(none)'}`);
    if ((old.optional ?? false) !== (m.optional ?? false)) emit('neutral', `${where}: ${m.optional ? 'now optional' : 'now required'}`);
  }
  for (const [key, m] of a) if (!b.has(key)) emit(m.type === 'bind' ? 'strengthening' : 'neutral', `${m.target} removed (${mountFlags(m)}, ${m.role})`);
}

function diffDevices(emit: Emit, before: DeviceNode[], after: DeviceNode[]): void {
  const a = byKey(before, (d) => d.name);
  const b = byKey(after, (d) => d.name);
  const describe = (d: DeviceNode) => (d.kind === 'bind' ? `bind of ${d.source}` : `symlink to ${d.source}`);
  for (const [name, d] of b) {
    const old = a.get(name);
    if (!old) emit(d.kind === 'bind' ? 'weakening' : 'neutral', `/dev/${name} added (${describe(d)})`);
    else if (old.kind !== d.kind || old.source !== d.source) emit('neutral', `/dev/${name}: ${describe(old)} → ${describe(d)}`);
    else if (old.optional !== d.optional) emit('neutral', `/dev/${name}: ${d.optional ? 'now optional' : 'now required'}`);
  }
  for (const [name, d] of a) if (!b.has(name)) emit(d.kind === 'bind' ? 'strengthening' : 'neutral', `/dev/${name} removed (${describe(d)})`);
}

function diffEtc(emit: Emit, before: EtcFile[], after: EtcFile[]): void {
  const a = byKey(before, (f) => f.path);
  const b = byKey(after, (f) => f.path);
  const describe = (f: EtcFile) => (f.hostSource ? `the host's ${f.hostSource}` : 'generated');
  for (const [path, f] of b) {
    const old = a.get(path);
    if (!old) emit(f.hostSource ? 'weakening' : 'neutral', `${path} added (${describe(f)})`);
    else if (old.hostSource !== f.hostSource) emit(f.hostSource ? 'weakening' : 'strengthening', `${path}: ${describe(old)} → ${describe(f)}`);
    else if (JSON.stringify(old.content) !== JSON.stringify(f.content) || old.mode !== f.mode) emit('neutral', `${path}: content changed`);
  }
  for (const [path, f] of a) if (!b.has(path)) emit(f.hostSource ? 'strengthening' : 'neutral', `${path} removed (${describe(f)})`);
}

const NETWORK_OPENNESS = { none: 0, slirp: 1, host: 2 } as const;

function actionText(a: SeccompAction): string {
  return a.kind === 'errno' ? `errno ${a.name}` : a.kind;
}

/** How much an action refuses: allow/log let the call through, errno/trap refuse it, kill refuses hardest. */
function refusal(a: SeccompAction): number {
  return { allow: 0, log: 0, errno: 1, trap: 1, kill_thread: 2, kill_process: 2 }[a.kind];
}

function ruleText(r: SeccompRule): string {
  const args = r.args.map((c) => `arg${c.index} ${c.op}${c.mask !== undefined ? ` mask 0x${c.mask.toString(16)}` : ''} 0x${c.value.toString(16)}`).join(' && ');
  return `${actionText(r.action)} ${r.syscall}${args ? ` if ${args}` : ''}`;
}

function diffSeccomp(emit: Emit, before: SeccompPlan | null, after: SeccompPlan | null): void {
  if (!before && !after) return;
  if (!before) return emit('strengthening', `filter added (default ${actionText(after!.defaultAction)}, ${after!.rules.length} rules, ${after!.architectures.join(' ')})`);
  if (!after) return emit('weakening', `filter removed (had default ${actionText(before.defaultAction)}, ${before.rules.length} rules)`);
  const da = refusal(before.defaultAction);
  const db = refusal(after.defaultAction);
  if (actionText(before.defaultAction) !== actionText(after.defaultAction)) {
    emit(db > da ? 'strengthening' : db < da ? 'weakening' : 'neutral', `default action ${actionText(before.defaultAction)} → ${actionText(after.defaultAction)}`);
  }
  compareSets(emit, 'architecture', before.architectures, after.architectures, 'strengthening');
  if (before.profile?.path !== after.profile?.path) {
    emit('neutral', `profile ${before.profile?.path ?? 'none'} → ${after.profile?.path ?? 'none'} (its rules are compared below)`);
  }
  const a = byKey(before.rules, ruleText);
  const b = byKey(after.rules, ruleText);
  // A rule is weighed against what the other filter does with the same syscall (its outright
  // rule, else its default): an allowlist replacing a denylist adds allow rules that open nothing.
  const verdict = (filter: SeccompPlan, syscall: string): SeccompAction =>
    filter.rules.find((r) => r.syscall === syscall && r.args.length === 0)?.action ?? filter.defaultAction;
  const effect = (from: SeccompAction, to: SeccompAction): Effect => (refusal(to) > refusal(from) ? 'strengthening' : refusal(to) < refusal(from) ? 'weakening' : 'neutral');
  for (const [text, r] of b) if (!a.has(text)) emit(effect(verdict(before, r.syscall), r.action), `rule added: ${text}`);
  for (const [text, r] of a) if (!b.has(text)) emit(effect(r.action, verdict(after, r.syscall)), `rule removed: ${text}`);
}

function diffLandlock(emit: Emit, before: Plan['landlock'], after: Plan['landlock']): void {
  if (!before && !after) return;
  if (!before) return emit('strengthening', `Landlock added (compat ${after!.compat}, ${after!.paths.length} paths)`);
  if (!after) return emit('weakening', `Landlock removed (had compat ${before.compat}, ${before.paths.length} paths)`);
  if (before.compat !== after.compat) emit(after.compat === 'require' ? 'strengthening' : 'weakening', `compat ${before.compat} → ${after.compat}`);
  const a = byKey(before.paths, (p) => p.path);
  const b = byKey(after.paths, (p) => p.path);
  for (const path of new Set([...a.keys(), ...b.keys()])) compareSets(emit, `${path} access`, a.get(path)?.access ?? [], b.get(path)?.access ?? [], 'weakening');
  compareSets(emit, 'scope', before.scopes, after.scopes, 'strengthening');
  if (!before.tcp && after.tcp) emit('strengthening', `TCP restricted (bind ${after.tcp.bind.join(',') || 'none'}, connect ${after.tcp.connect.join(',') || 'none'})`);
  else if (before.tcp && !after.tcp) emit('weakening', 'TCP no longer restricted');
  else if (before.tcp && after.tcp) {
    compareSets(emit, 'TCP bind port', before.tcp.bind.map(String), after.tcp.bind.map(String), 'weakening');
    compareSets(emit, 'TCP connect port', before.tcp.connect.map(String), after.tcp.connect.map(String), 'weakening');
  }
}

function diffRlimits(emit: Emit, before: Record<string, Rlimit>, after: Record<string, Rlimit>): void {
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    compareLimit(emit, `rlimit ${name} soft`, before[name]?.soft, after[name]?.soft);
    compareLimit(emit, `rlimit ${name} hard`, before[name]?.hard, after[name]?.hard);
  }
}

function cpuShare(cpu: { quotaUs: number; periodUs: number } | undefined): number | undefined {
  return cpu ? cpu.quotaUs / cpu.periodUs : undefined;
}

/** A personality flag that weakens exploit mitigations (PER_LINUX32 only picks an ABI). */
function personalityEffect(flag: string): Effect {
  return flag === 'PER_LINUX32' ? 'neutral' : 'weakening';
}

/** A UID range whose UIDs or GID fall among system accounts (below 1000). */
function reachesSystemIds(pool: Plan['identity']['pool']): boolean {
  return pool.kind === 'range' && (pool.first < 1000 || pool.gid < 1000);
}

/** A prefix list compared by what it covers: a prefix beneath one kept on the other side changes nothing. */
function diffPrefixes(emit: Emit, what: string, before: readonly string[], after: readonly string[]): void {
  for (const p of after) if (!before.some((q) => isUnder(p, q))) emit('weakening', `${what}: ${p} added`);
  for (const p of before) if (!after.some((q) => isUnder(p, q))) emit('strengthening', `${what}: ${p} removed`);
}

/**
 * The audit's rules are the one table of what weakens: a finding of a weighed rule that the old
 * policy does not have, or a rule whose points rise, is a weakening in `diff` as it is a finding
 * in `audit` (so a higher exposure score always comes with a weakening). Findings are matched by
 * rule and message, not by position, which follows the policy's layout.
 */
export function diffFindings(before: AuditReport, after: AuditReport): Change[] {
  const changes: Change[] = [];
  const text = (f: Finding) => (f.message.endsWith(DEFAULT_NOTE) ? f.message.slice(0, -DEFAULT_NOTE.length) : f.message);
  for (const rule of RULES) {
    const of = (r: AuditReport) => r.findings.filter((f) => f.ruleId === rule.id);
    const [old, now] = [of(before), of(after)];
    const points = (fs: Finding[]) => fs.reduce((sum, f) => sum + f.points, 0);
    const emit = (effect: Effect, description: string) => changes.push({ section: 'audit', effect, description: `${rule.id} (${rule.severity}): ${description}` });
    const oldTexts = new Set(old.map(text));
    const nowTexts = new Set(now.map(text));
    const added = [...nowTexts].filter((m) => !oldTexts.has(m));
    const removed = [...oldTexts].filter((m) => !nowTexts.has(m));
    const rise = Math.round((points(now) - points(old)) * 100) / 100;
    const weighed = rule.weight > 0;
    for (const m of added) emit(weighed ? 'weakening' : 'neutral', `${m} (new finding)`);
    for (const m of removed) emit(weighed ? 'strengthening' : 'neutral', `${m} (finding gone)`);
    if (!added.length && !removed.length && rise !== 0) emit(rise > 0 ? 'weakening' : 'strengthening', `${rule.title}: ${rise > 0 ? '+' : ''}${rise} points`);
  }
  return changes;
}

export function diffPlans(before: Plan, after: Plan): Change[] {
  const changes: Change[] = [];
  const section = (name: string): Emit => (effect, description) => changes.push({ section: name, effect, description });

  const identity = section('identity');
  const poolText = (p: Plan['identity']['pool']) => (p.kind === 'group' ? `group ${p.group}` : `UIDs ${p.first}-${p.first + p.count - 1} gid ${p.gid}`);
  if (poolText(before.identity.pool) !== poolText(after.identity.pool)) {
    const effect: Effect = reachesSystemIds(after.identity.pool) && !reachesSystemIds(before.identity.pool) ? 'weakening' : 'neutral';
    identity(effect, `pool ${poolText(before.identity.pool)} → ${poolText(after.identity.pool)}`);
  }
  if (before.identity.supplementaryGroups !== after.identity.supplementaryGroups) {
    identity(after.identity.supplementaryGroups === 'pool' ? 'weakening' : 'strengthening', `supplementary groups ${before.identity.supplementaryGroups} → ${after.identity.supplementaryGroups}`);
  }
  const entry = (i: Plan['identity']) => `${i.passwd.name}:${i.passwd.gecos}:${i.passwd.home}:${i.passwd.shell} group ${i.groupName} locks ${i.stateDir}`;
  if (entry(before.identity) !== entry(after.identity)) identity('neutral', `account ${entry(before.identity)} → ${entry(after.identity)}`);

  compareSets(section('namespaces'), 'namespace', before.namespaces, after.namespaces, 'strengthening');

  const root = section('root');
  if (before.root.readonly !== after.root.readonly) root(after.root.readonly ? 'strengthening' : 'weakening', `root ${before.root.readonly ? 'read-only' : 'writable'} → ${after.root.readonly ? 'read-only' : 'writable'}`);
  if (before.root.mode !== after.root.mode || before.root.size !== after.root.size) {
    root('neutral', `root mode ${before.root.mode.toString(8)} size ${before.root.size} → mode ${after.root.mode.toString(8)} size ${after.root.size}`);
  }

  const filesystem = section('filesystem');
  diffPrefixes(filesystem, 'inputs.under', before.build.inputsUnder, after.build.inputsUnder);
  diffPrefixes(filesystem, 'outputs.under', before.build.outputsUnder, after.build.outputsUnder);

  diffMounts(section('mounts'), before.mounts, after.mounts);
  diffDevices(section('devices'), before.devices, after.devices);
  diffEtc(section('etc'), before.etc, after.etc);

  const network = section('network');
  if (before.network.mode !== after.network.mode) {
    network(NETWORK_OPENNESS[after.network.mode] > NETWORK_OPENNESS[before.network.mode] ? 'weakening' : 'strengthening', `mode ${before.network.mode} → ${after.network.mode}`);
  }
  if (before.network.allowHostLoopback !== after.network.allowHostLoopback) {
    network(after.network.allowHostLoopback ? 'weakening' : 'strengthening', `host loopback ${after.network.allowHostLoopback ? 'reachable' : 'unreachable'}`);
  }
  if (before.network.vsock !== after.network.vsock) network(after.network.vsock ? 'weakening' : 'strengthening', `vsock ${after.network.vsock ? 'open' : 'closed'}`);
  if (before.hostname !== after.hostname) network('neutral', `hostname ${before.hostname} → ${after.hostname}`);
  if (before.domainname !== after.domainname) network('neutral', `domainname ${before.domainname} → ${after.domainname}`);

  const env = section('environment');
  const secret = (name: string) => SECRET_NAME.test(name);
  for (const [name, value] of Object.entries(after.environment)) {
    if (!(name in before.environment)) env(secret(name) ? 'weakening' : 'neutral', `${name} added${secret(name) ? ' (looks like a secret)' : ''}`);
    else if (before.environment[name] !== value) env('neutral', `${name}: ${before.environment[name]} → ${value}`);
  }
  for (const name of Object.keys(before.environment)) if (!(name in after.environment)) env(secret(name) ? 'strengthening' : 'neutral', `${name} removed`);

  const caps = section('capabilities');
  compareSets(caps, 'bounding', before.capabilities.bounding, after.capabilities.bounding, 'weakening');
  compareSets(caps, 'ambient', before.capabilities.ambient, after.capabilities.ambient, 'weakening');
  if (before.noNewPrivs !== after.noNewPrivs) section('no_new_privs')(after.noNewPrivs ? 'strengthening' : 'weakening', `no_new_privs ${before.noNewPrivs} → ${after.noNewPrivs}`);

  diffSeccomp(section('seccomp'), before.seccomp, after.seccomp);
  diffLandlock(section('landlock'), before.landlock, after.landlock);

  const limits = section('limits');
  diffRlimits(limits, before.limits.rlimits, after.limits.rlimits);
  compareLimit(limits, 'cgroup pids', before.limits.cgroup.pids, after.limits.cgroup.pids);
  compareLimit(limits, 'cgroup memory bytes', before.limits.cgroup.memoryBytes, after.limits.cgroup.memoryBytes);
  compareLimit(limits, 'cgroup cpu cores', cpuShare(before.limits.cgroup.cpu), cpuShare(after.limits.cgroup.cpu));

  const timeouts = section('timeouts');
  compareLimit(timeouts, 'total seconds', before.timeouts.totalSeconds, after.timeouts.totalSeconds, true);
  compareLimit(timeouts, 'max silent seconds', before.timeouts.maxSilentSeconds, after.timeouts.maxSilentSeconds, true);

  const owner = (p: Plan) => `${p.outputs.owner.uid}:${p.outputs.owner.gid}`;
  if (owner(before) !== owner(after)) {
    // Only root leaves nobody able to change handed-over outputs.
    const effect: Effect = after.outputs.owner.uid === 0 ? 'strengthening' : before.outputs.owner.uid === 0 ? 'weakening' : 'neutral';
    section('outputs')(effect, `owner ${owner(before)} → ${owner(after)}`);
  }

  const personality = section('personality');
  for (const flag of after.personality.filter((f) => !before.personality.includes(f))) personality(personalityEffect(flag), `${flag} added`);
  for (const flag of before.personality.filter((f) => !after.personality.includes(f))) {
    const added = personalityEffect(flag);
    personality(added === 'weakening' ? 'strengthening' : 'neutral', `${flag} removed`);
  }

  if (before.oomScoreAdj !== after.oomScoreAdj) {
    // Higher is safer: the OOM killer then takes the build before host processes.
    section('oom_score_adj')(after.oomScoreAdj < before.oomScoreAdj ? 'weakening' : 'strengthening', `oom_score_adj ${before.oomScoreAdj} → ${after.oomScoreAdj}`);
  }
  if (before.policy.fixedOutput !== after.policy.fixedOutput) section('policy')('neutral', `fixed_output ${before.policy.fixedOutput} → ${after.policy.fixedOutput}`);
  return changes;
}
