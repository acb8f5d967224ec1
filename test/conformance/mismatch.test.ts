// Every check can fail: each one passes on a real strict sandbox, then reports `not ok` with the
// right expected and observed values once the Plan (or, where the Plan cannot say it, the
// observation) is made to disagree with the sandbox.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import type { Check, Outcome } from '../../src/conformance/check.js';
import type { Observation } from '../../src/conformance/observation.js';
import type { BuildRun, Subject } from '../../src/conformance/sandbox.js';
import type { Plan } from '../../src/plan/types.js';
import type { RunResult } from '../../src/runtime/supervisor.js';
import { distUrl, ensureBuilt, isRoot, NOT_ROOT_REASON } from '../helpers/child.js';

// The compiled modules: the runtime starts init from dist/, next to itself.
ensureBuilt();
const { CATALOGUE } = (await import(distUrl('conformance/catalogue.js'))) as typeof import('../../src/conformance/catalogue.js');
const { observe, prepareSubject } = (await import(distUrl('conformance/sandbox.js'))) as typeof import('../../src/conformance/sandbox.js');
const { judge } = (await import(distUrl('conformance/suite.js'))) as typeof import('../../src/conformance/suite.js');

type Mismatch = (plan: Plan, obs: Observation, subject: Subject) => void;

const EACCES = { kind: 'errno', errno: 13, name: 'EACCES' } as const;

/** For each probe check: what to change so the Plan and the sandbox disagree. */
const PROBE_MISMATCHES: Record<string, Mismatch> = {
  'FS-01': (plan) => void (plan.root.readonly = false),
  'FS-02': (plan) => void plan.mounts.push({ source: { kind: 'host', path: '/home' }, target: '/home', type: 'bind', readonly: true, nosuid: true, nodev: true, noexec: false, role: 'path' }),
  'FS-03': (_plan, obs) => void (obs.writable['/usr'] = 'ok'),
  'FS-04': (_plan, obs, s) => void (obs.exists[s.host.tmpMarker] = true),
  'FS-05': (plan) => void (plan.build.dir = '/tmp/somewhere-else'),
  'FS-06': (plan) => void plan.etc[0].content!.push('tampered\n'),
  'FS-07': (plan) => void (plan.mounts.find((m) => m.target === '/tmp')!.nosuid = false),
  'FS-08': (_plan, obs) => void obs.procPids.push(42),
  'FS-09': (plan) => void plan.mounts.push({ source: { kind: 'host', path: '/sys' }, target: '/sys', type: 'bind', readonly: true, nosuid: true, nodev: true, noexec: true, role: 'path' }),
  'FS-10': (plan) => void plan.mounts.push({ source: { kind: 'host', path: '/usr' }, target: '/opt', type: 'bind', readonly: true, nosuid: true, nodev: true, noexec: false, role: 'path' }),
  'FS-11': (plan, obs) => void (obs.outputsMade[plan.build.outputs[0]] = 'EROFS'),
  // A name no plan declares: injecting a real one (kvm) would be expected where the host has it.
  'DEV-01': (_plan, obs) => void obs.devices.push({ name: 'stockade-injected', type: 'char', rdev: '1:3' }),
  'DEV-02': (_plan, obs) => {
    const pts = obs.mounts.find((m) => m.target === '/dev/pts')!;
    pts.fstype = 'devtmpfs';
  },
  'DEV-03': (_plan, obs) => void obs.devices.push({ name: 'sda', type: 'block', rdev: '8:0' }),
  'DEV-04': (_plan, obs) => void (obs.mknod = 'ok'),
  'PRV-01': (_plan, obs) => void (obs.uid = [0, 0, 0]),
  'PRV-02': (_plan, obs) => void (obs.groups = [0]),
  'PRV-03': (plan) => void (plan.capabilities.bounding = ['CAP_CHOWN']),
  'PRV-04': (plan) => void (plan.noNewPrivs = false),
  'PRV-05': (plan) => void (plan.seccomp!.rules = plan.seccomp!.rules.filter((r) => r.syscall !== 'chmod')),
  'PRV-07': (_plan, obs) => void (obs.killHost = 'ok'),
  'PRV-08': (plan) => void plan.seccomp!.rules.filter((r) => r.syscall === 'ioctl').forEach((r) => (r.action = EACCES)),
  'PRV-09': (_plan, obs) => void obs.start.fds.push(3),
  'PRV-10': (plan) => void (plan.namespaces = plan.namespaces.filter((n) => n !== 'net')),
  'PRV-11': (plan) => void (plan.seccomp!.rules = plan.seccomp!.rules.filter((r) => r.syscall !== 'openat')),
  // A builder started as Node starts it: SIGPIPE and SIGXFSZ ignored.
  'PRV-12': (_plan, obs) => void (obs.start.signals.SigIgn = '0000000001001000'),
  // An init that armed a one-second ITIMER_REAL before execve.
  'PRV-14': (_plan, obs) => void (obs.start.timers.real = 1_000_000),
  'KRN-01': (plan) => void Object.assign(plan, { seccomp: null, network: { ...plan.network, vsock: true } }),
  'KRN-02': (plan) => void (plan.seccomp!.rules.find((r) => r.syscall === 'unshare')!.action = EACCES),
  'KRN-03': (plan) => void (plan.seccomp!.rules.find((r) => r.syscall === 'keyctl')!.action = EACCES),
  'KRN-04': (_plan, obs) => void (obs.syscalls['x86_64:read'] = 'EPERM'),
  'KRN-05': (plan) => void plan.landlock!.paths.push({ path: '/proc', access: ['write'] }),
  'KRN-06': (plan) => void (plan.network.mode = 'host'),
  'NET-01': (_plan, obs) => void obs.interfaces.push({ name: 'eth0', up: true, addresses: [] }),
  'NET-02': (plan) => void (plan.hostname = 'elsewhere'),
  'NET-03': (plan) => void (plan.network.vsock = true),
  'RES-01': (plan) => void (plan.limits.rlimits.nofile = { soft: 1024, hard: 8192 }),
  'RES-06': (plan) => void (plan.mounts.find((m) => m.target === '/tmp')!.options = 'mode=1777,size=1g'),
  'ENV-01': (plan) => void (plan.environment.EXTRA = 'not given to the build'),
  'ENV-02': (_plan, obs) => void (obs.start.environ.TMPDIR = '/tmp'),
  'ENV-03': (_plan, obs) => void (obs.start.stdin = '/dev/pts/0'),
  'CVE-2017-5226': (_plan, obs) => void (obs.tty.openDevTty = 'ok'),
  'CVE-2024-38531': (_plan, obs) => void (obs.chmodParent = 'ok'),
  'CVE-2025-46416': (_plan, obs) => void (obs.abstractSocket = 'ok'),
};

const leaks: string[] = [];
t.teardown(() => leaks.forEach((leak) => rmSync(leak, { force: true })));

function fakeRun(result: Partial<RunResult>, stdout = ''): BuildRun {
  return { result: { outcome: 'succeeded', exitCode: 0, status: 0, termSignal: null, uid: 4242, durationMs: 1, ...result } as RunResult, stdout, stderr: '' };
}

/** For each sandbox check: a runtime that misbehaves in the way the check exists to catch. */
const SANDBOX_MISMATCHES: Record<string, (plan: Plan) => BuildRun | Promise<BuildRun>> = {
  'PRV-06': () => fakeRun({ uid: 4242 }),
  'RES-02': () => fakeRun({ outcome: 'succeeded' }),
  'RES-03': () => fakeRun({ outcome: 'succeeded' }),
  'RES-04': () => fakeRun({ outcome: 'succeeded' }),
  'RES-05': () => fakeRun({ outcome: 'succeeded' }, 'started\n'),
  'RES-07': () => fakeRun({ outcome: 'failed', exitCode: 1 }),
  'CVE-2021-27851': () => fakeRun({}),
  // A clean-up that follows the planted symlink deletes the victim's file.
  'CVE-2025-46415': (plan) => {
    const victim = /ln -s (\S+) link/.exec(plan.build.args[1])![1];
    rmSync(`${victim}/precious`);
    return fakeRun({ outcome: 'failed', exitCode: 1 });
  },
  'GUIX-KILLUSER': () => fakeRun({ outcome: 'failed', exitCode: 1 }),
  // A runtime that follows the symlink in the middle of the path: the hand-over writes on the host.
  'FS-12': (plan) => {
    for (const output of plan.build.outputs) {
      const victim = output.slice(output.indexOf('/up/') + '/up'.length);
      writeFileSync(victim, 'pwned\n');
      leaks.push(victim);
    }
    return fakeRun({}, 'ran\n');
  },
  // Keyrings passed on as they are: every build finds every key it looks for.
  'PRV-13': (plan) => {
    const { keys } = JSON.parse(plan.build.args[2]);
    const found = Object.fromEntries(keys.find.map((d: string) => [d, { session: 'ok', user: 'ok', userSession: 'ok' }]));
    const uid = plan.identity.pool.kind === 'range' ? plan.identity.pool.first : 0;
    return fakeRun({}, `STOCKADE-PROBE-KEYS ${JSON.stringify({ uid, found, ...(keys.plant ? { planted: { user: 'ok', userSession: 'ok' } } : {}) })}\n`);
  },
  // A hand-over that installs nothing.
  'OUT-01': () => fakeRun({ outcome: 'failed', exitCode: 1 }),
  // The old runtime: every output an empty directory made before the build, so a build that makes none succeeds.
  'OUT-02': () => fakeRun({ outcome: 'succeeded' }),
  // A hand-over that leaves a setuid file where others can see it, next to the output.
  'CVE-2024-52867': (plan) => {
    const leak = `${plan.build.outputs[0]}-leak`;
    writeFileSync(leak, '#!/bin/sh\n');
    chmodSync(leak, 0o4755);
    leaks.push(leak);
    return fakeRun({ outcome: plan.build.args[1].endsWith('exit 0') ? 'succeeded' : 'failed' });
  },
  // A runtime that follows the planted symlink and chmods the host file behind it.
  'CVE-2025-52992': (plan) => {
    chmodSync(/ln -s (\S+) "\$d\/link"/.exec(plan.build.args[1])![1], 0o666);
    return fakeRun({ outcome: plan.build.args[1].endsWith('exit 0') ? 'succeeded' : 'failed' });
  },
  // Two builds sharing a network namespace: the dialer reaches the listener.
  'CVE-2024-27297': (plan) => {
    if (plan.build.args.length < 3) return fakeRun({}, '1\n');
    const { peer } = JSON.parse(plan.build.args[2]);
    const report = peer.role === 'listen' ? { self: 'ok', accepted: 1 } : { dial: 'ok' };
    return fakeRun({}, `STOCKADE-PROBE-PEER ${JSON.stringify(report)}\n`);
  },
};

const notSkipped = (o: Outcome) => !('skip' in o) && !('cannotRun' in o);

t.test('each check reports not ok when Plan and sandbox disagree', { skip: !isRoot && NOT_ROOT_REASON }, async (t) => {
  const first = 2_000_000_000 + randomBytes(3).readUIntBE(0, 3) * 64;
  const subject = await prepareSubject('policies/strict.yaml', { poolRange: { first, count: 4, gid: first } });
  t.teardown(() => subject.dispose());
  const obs = await observe(subject);

  for (const check of CATALOGUE.filter((c): c is Extract<Check, { kind: 'probe' }> => c.kind === 'probe')) {
    const real = check.evaluate({ plan: subject.plan, obs, host: subject.host });
    if (!notSkipped(real)) {
      t.notOk(check.id in PROBE_MISMATCHES, `${check.id} is skipped under strict (${'skip' in real ? real.skip : ''})`);
      continue;
    }
    t.equal(judge('strict', check, real).status, 'pass', `${check.id} passes on the real sandbox`);
    const mismatch = PROBE_MISMATCHES[check.id];
    if (!t.ok(mismatch, `${check.id} has a mismatch case`)) continue;
    const plan = structuredClone(subject.plan);
    const changed = structuredClone(obs);
    mismatch(plan, changed, subject);
    const outcome = check.evaluate({ plan, obs: changed, host: subject.host });
    const result = judge('strict', check, outcome);
    t.equal(result.status, 'fail', `${check.id} reports not ok`);
    t.notSame(result.expected, result.observed, `${check.id} shows expected and observed: ${JSON.stringify(result.expected)} vs ${JSON.stringify(result.observed)}`);
  }

  for (const check of CATALOGUE.filter((c): c is Extract<Check, { kind: 'sandbox' }> => c.kind === 'sandbox')) {
    const misbehave = SANDBOX_MISMATCHES[check.id];
    if (!t.ok(misbehave, `${check.id} has a misbehaving runtime case`)) continue;
    const result = judge('strict', check, await check.run({ subject, run: async (plan) => misbehave(plan) }));
    t.equal(result.status, 'fail', `${check.id} reports not ok against a runtime that ${JSON.stringify(result.observed)}`);
  }
});
