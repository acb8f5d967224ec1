// stockade explain FILE [--spec SPEC] [--json]: the Plan a policy resolves to, readable.
import { command, parse, UsageError } from './args.js';
import type { Mount, Plan, SeccompAction, SeccompRule } from '../plan/types.js';
import { describeOrigin, describeSource, etcText } from '../plan/describe.js';

const HELP = `usage: stockade explain [--spec SPEC] [--json] [--policies DIR] FILE

Shows the Plan a policy (and a build spec) resolves to: every mount, device, /etc file,
the identity, environment, network, seccomp and Landlock rules, limits, timeouts and how
outputs are handed over.
Without --spec, an example build named 'example' is planned.

options:
  --spec SPEC       a build spec (YAML or JSON: name, builder, args, env, inputs, outputs, cores)
  --json            print the Plan as JSON
  --policies DIR    where 'extends: NAME' is looked up (default: the shipped policies)
  -h, --help        show this help

exit status: 0 ok, 1 invalid policy or refused spec, 2 usage error`;

function flags(m: Mount): string {
  const f = [m.readonly ? 'ro' : 'rw'];
  if (m.nosuid) f.push('nosuid');
  if (m.nodev) f.push('nodev');
  if (m.noexec) f.push('noexec');
  if (m.options) f.push(m.options);
  if (m.optional) f.push('(optional)');
  return f.join(',');
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => ('  ' + r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).trimEnd());
}

function action(a: SeccompAction): string {
  return a.kind === 'errno' ? `errno ${a.name}` : a.kind;
}

export function renderPlan(plan: Plan): string {
  const out: string[] = [];
  const section = (title: string) => out.push('', `${title}:`);
  out.push(`policy ${plan.policy.name}${plan.policy.fixedOutput ? ' (fixed-output)' : ''}: ${plan.policy.description}`);
  out.push(`  from ${plan.policy.chain.join(' → ')}`);
  section('build');
  // Arguments as a JSON list: joined by spaces, [PIPE,XFSZ] and [PIPE, XFSZ] would read the same.
  out.push(`  name ${plan.build.name}, builder ${plan.build.builder}, args ${JSON.stringify(plan.build.args)}`);
  out.push(`  build dir ${plan.build.dir} (cwd), on the host ${plan.build.hostParent}/${plan.build.hostDirPrefix}N/top (the first N free)`);
  out.push(`  cores ${plan.build.cores === 0 ? '0 (all)' : plan.build.cores}`);
  section('identity');
  const pool = plan.identity.pool;
  out.push(`  pool ${pool.kind === 'group' ? `members of group ${pool.group}` : `UIDs ${pool.first}-${pool.first + pool.count - 1}, GID ${pool.gid}`} (locks in ${plan.identity.stateDir})`);
  out.push(`  inside: user ${plan.identity.passwd.name}, group ${plan.identity.groupName}, supplementary groups ${plan.identity.supplementaryGroups}`);
  out.push(`  capabilities: bounding [${plan.capabilities.bounding.join(', ')}], ambient [${plan.capabilities.ambient.join(', ')}]; no_new_privs ${plan.noNewPrivs}`);
  out.push(`  personality [${plan.personality.join(', ')}], oom_score_adj ${plan.oomScoreAdj}`);
  section('namespaces');
  out.push(`  ${plan.namespaces.join(', ')} (no user namespace: builds run as real pool UIDs)`);
  section('mounts');
  out.push(`  / tmpfs size=${plan.root.size} mode=${plan.root.mode.toString(8).padStart(4, '0')}${plan.root.readonly ? ', read-only once built' : ''}`);
  out.push(...table([['TARGET', 'TYPE', 'SOURCE', 'FLAGS', 'ROLE', 'SET BY'], ...plan.mounts.map((m) => [m.target, m.type, describeSource(m), flags(m), m.role, m.origin ? describeOrigin(m.origin) : ''])]));
  section('/dev');
  out.push(...plan.devices.map((d) => `  ${d.name.padEnd(8)} ${d.kind === 'bind' ? `bind of ${d.source}` : `-> ${d.source}`}${d.optional ? ' (if the host has it)' : ''}`));
  section('/etc');
  for (const f of plan.etc) {
    if (f.hostSource) out.push(`  ${f.path}: the host's, read-only${f.optional ? ', if present' : ''}`);
    else {
      out.push(`  ${f.path} (${f.mode.toString(8)}):`);
      out.push(...etcText(f.content ?? [], { uid: '{uid}', gid: '{gid}' }).trimEnd().split('\n').map((l) => `    ${l}`));
    }
  }
  out.push('  ({uid} and {gid} are the build user taken from the pool)');
  section('network');
  out.push(`  ${plan.network.mode}${plan.network.mode === 'none' ? ': own namespace, only lo up' : plan.network.mode === 'slirp' ? `: own namespace through slirp4netns, host loopback ${plan.network.allowHostLoopback ? 'reachable' : 'unreachable'}` : ": the host's network"}`);
  out.push(`  vsock ${plan.network.vsock ? 'open: socket(AF_VSOCK) reaches the host\'s vsock port space' : 'closed: socket(AF_VSOCK) fails with EPERM'}`);
  out.push(`  hostname ${plan.hostname}, domainname ${plan.domainname}`);
  section('environment (exactly)');
  out.push(...Object.entries(plan.environment).map(([k, v]) => `  ${k}=${v}`));
  section('seccomp');
  if (!plan.seccomp) out.push('  none');
  else {
    const s = plan.seccomp;
    out.push(`  default ${action(s.defaultAction)}, architectures ${s.architectures.join(', ')}, ${s.rules.length} rules`);
    if (s.profile) {
      const own = s.rules.filter((r) => !r.fromProfile).length;
      out.push(`  based on the profile ${s.profile.path}: ${s.rules.length - own} of its rules, ${own} of the policy's own; default from the ${s.profile.defaultFrom}, architectures from the ${s.profile.architecturesFrom}`);
    }
    const origin = (r: SeccompRule) => (r.fromProfile ? ' (profile)' : '');
    const plain = new Map<string, string[]>();
    for (const r of s.rules.filter((r) => r.args.length === 0)) {
      const key = action(r.action) + origin(r);
      plain.set(key, [...(plain.get(key) ?? []), r.syscall + (r.optional ? '?' : '')]);
    }
    for (const [act, names] of plain) out.push(`  ${act}: ${names.join(' ')}`);
    for (const r of s.rules.filter((r) => r.args.length > 0)) {
      const conds = r.args.map((a) => `arg${a.index} ${a.op === 'masked_eq' ? `& 0x${a.mask!.toString(16)} == 0x${a.value.toString(16)}` : `${a.op} 0x${a.value.toString(16)}`}`).join(' && ');
      out.push(`  ${action(r.action)}${origin(r)}: ${r.syscall} if ${conds}`);
    }
  }
  section('landlock');
  if (!plan.landlock) out.push('  none');
  else {
    const l = plan.landlock;
    out.push(`  compat ${l.compat}; scopes [${l.scopes.join(', ')}]${l.tcp ? `; tcp bind [${l.tcp.bind.join(', ')}] connect [${l.tcp.connect.join(', ')}]` : ''}`);
    out.push(...l.paths.map((p) => `  ${p.path}: ${p.access.join(', ')}`));
  }
  section('limits');
  const rl = Object.entries(plan.limits.rlimits);
  out.push(`  rlimits: ${rl.length ? rl.map(([k, v]) => (v.soft === v.hard ? `${k}=${v.soft}` : `${k}=${v.soft}/${v.hard}`)).join(' ') : 'inherited'}`);
  const cg = plan.limits.cgroup;
  out.push(`  cgroup: pids ${cg.pids ?? 'unlimited'}, memory ${cg.memoryBytes ?? 'unlimited'}, cpu ${cg.cpu ? `${cg.cpu.quotaUs}/${cg.cpu.periodUs} us` : 'unlimited'}`);
  out.push(`  inputs: at most ${plan.limits.maxInputs}`);
  out.push(`  outputs: ${plan.limits.outputBytes === null ? 'unlimited' : `at most ${plan.limits.outputBytes} bytes`}`);
  out.push(`  build dir: ${plan.limits.buildDirBytes === null ? "on the host's disk, unlimited" : `tmpfs of ${plan.limits.buildDirBytes} bytes (in memory)`}`);
  out.push(`  timeouts: total ${plan.timeouts.totalSeconds || 'none'} s, max silent ${plan.timeouts.maxSilentSeconds || 'none'} s`);
  section('outputs (handed over after the build)');
  const o = plan.outputs;
  const octal = (mode: number) => mode.toString(8).padStart(4, '0');
  out.push(`  ${plan.build.outputs.join(', ') || 'none declared'}: each made by the builder (a file, a directory or a symlink) in a private directory of the build's bound where it goes; only these names are copied, as fresh inodes, once every build process is gone`);
  out.push(`  owner ${o.owner.uid}:${o.owner.gid}; files ${octal(o.fileMode)}, executables ${octal(o.executableMode)}, directories ${octal(o.directoryMode)}; mtime ${o.mtime}`);
  out.push('  setuid, setgid, sticky bits and extended attributes (ACLs) dropped; symlinks copied as links, never followed');
  out.push('  the build fails on: a declared output the builder did not make, devices, FIFOs, sockets, entries not owned by the build user, hard links reaching outside the output');
  return out.join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const args = parse(argv, { spec: { type: 'string' }, json: { type: 'boolean' }, policies: { type: 'string' } }, HELP);
    if (!args) return 0;
    if (args.positionals.length !== 1) throw new UsageError('explain needs exactly one policy file');
    const { planFromFile } = await import('../plan/index.js');
    const { loadSpecFile, SpecRefused } = await import('../plan/spec.js');
    const { PolicyError } = await import('../policy/errors.js');
    try {
      const spec = args.values.spec ? loadSpecFile(args.values.spec) : undefined;
      const plan = planFromFile(args.positionals[0], { spec, specSource: args.values.spec, policiesDir: args.values.policies, callerEnv: process.env });
      process.stdout.write(args.values.json ? JSON.stringify(plan, null, 2) + '\n' : renderPlan(plan));
      return 0;
    } catch (err) {
      if (err instanceof PolicyError || err instanceof SpecRefused) {
        process.stderr.write(err.message + '\n');
        return 1;
      }
      throw err;
    }
  });
}
