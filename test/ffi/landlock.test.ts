// Landlock: what a plan becomes under each ABI (pure), and what a restricted child observes.
import t from 'tap';
import { createServer, type Server } from 'node:net';
import type { LandlockPlan } from '../../src/plan/types.js';
import { LANDLOCK_ACCESS_FS, landlockAbi, planRuleset } from '../../src/ffi/landlock.js';
import { distUrl, ensureBuilt, runChildJson } from '../helpers/child.js';

t.before(ensureBuilt);

const fs = LANDLOCK_ACCESS_FS;
const plan = (extra: Partial<LandlockPlan> = {}): LandlockPlan => ({
  compat: 'best-effort',
  paths: [
    { path: '/usr', access: ['read', 'execute'] },
    { path: '/tmp', access: ['read', 'write'] },
  ],
  scopes: ['abstract-unix-socket', 'signal'],
  ...extra,
});

t.test('access mapping', async (t) => {
  const r = planRuleset(plan(), 7);
  t.equal(r.paths[0]!.access, fs.read_file.bit | fs.read_dir.bit | fs.execute.bit, 'read+execute');
  const write = r.paths[1]!.access;
  for (const right of ['write_file', 'remove_dir', 'remove_file', 'make_dir', 'make_reg', 'make_sym', 'refer', 'truncate', 'ioctl_dev'] as const) {
    t.ok(write & fs[right].bit, `write grants ${right}`);
  }
  t.notOk(write & fs.execute.bit, 'write does not grant execute');
  t.equal(r.handledFs, (1n << 16n) - 1n, 'every fs right of ABI 7 handled');
  t.equal(r.scoped, 3n);
  t.equal(r.handledNet, 0n, 'TCP not handled when the plan has no tcp');
  t.same(r.dropped, []);
});

t.test('best-effort on older ABIs reports exactly what was dropped', async (t) => {
  const withTcp = plan({ tcp: { bind: [], connect: [8080] } });
  t.same(planRuleset(withTcp, 1).dropped, ['fs:refer', 'fs:truncate', 'fs:ioctl_dev', 'net:bind_tcp', 'net:connect_tcp', 'scope:abstract-unix-socket', 'scope:signal']);
  t.same(planRuleset(withTcp, 4).dropped, ['fs:ioctl_dev', 'scope:abstract-unix-socket', 'scope:signal']);
  t.same(planRuleset(withTcp, 5).dropped, ['scope:abstract-unix-socket', 'scope:signal']);
  t.same(planRuleset(withTcp, 6).dropped, []);
  t.same(planRuleset(withTcp, 0).dropped, ['landlock']);
  const abi3 = planRuleset(withTcp, 3);
  t.equal(abi3.paths[1]!.access & fs.ioctl_dev.bit, 0n, 'rights the ABI lacks are not asked for');
  t.equal(abi3.handledNet, 0n);
  t.same(abi3.ports, []);
  const abi4 = planRuleset(withTcp, 4);
  t.same(abi4.ports, [{ port: 8080, access: 2n }], 'connect port rule');
  t.equal(abi4.handledNet, 3n, 'both bind and connect handled: binding is denied everywhere');
});

t.test('require refuses, naming what the kernel lacks', async (t) => {
  t.throws(() => planRuleset(plan({ compat: 'require' }), 5), {
    message: "landlock: the kernel's ABI 5 cannot enforce scope:abstract-unix-socket, scope:signal and the policy requires it (compat: require)",
  });
  t.throws(() => planRuleset(plan({ compat: 'require' }), 0), { message: /ABI 0 cannot enforce landlock/ });
  t.same(planRuleset(plan({ compat: 'require' }), 6).dropped, []);
  t.throws(() => planRuleset(plan({ scopes: ['ptrace' as 'signal'] }), 7), { message: "landlock: unknown scope 'ptrace'" });
  t.throws(() => planRuleset(plan({ tcp: { bind: [70000], connect: [] } }), 7), { message: /port 70000/ });
});

t.test('a restricted child: paths, abstract unix sockets and signals', async (t) => {
  const abi = landlockAbi();
  if (abi < 6) {
    t.plan(0, `the kernel's Landlock ABI is ${abi}; this check needs 6 (scopes)`);
    return;
  }
  const abstractName = `stockade-test-${process.pid}`;
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(`\0${abstractName}`, resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));

  const r = runChildJson<Record<string, any>>(`
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { applyLandlock } from '${distUrl('ffi/landlock.js')}';
import { setNoNewPrivs } from '${distUrl('ffi/libc.js')}';
import { rawSyscall } from '${distUrl('conformance/calls.js')}';
const dir = process.env.STOCKADE_TEST_DIR;
mkdirSync(join(dir, 'allowed')); mkdirSync(join(dir, 'denied'));
writeFileSync(join(dir, 'allowed', 'f'), 'yes'); writeFileSync(join(dir, 'denied', 'f'), 'no');
setNoNewPrivs();
const applied = applyLandlock({ compat: 'require', paths: [{ path: join(dir, 'allowed'), access: ['read'] }], scopes: ['abstract-unix-socket', 'signal'] });
const attempt = (fn) => { try { return fn(); } catch (e) { return e.code; } };
const tryConnect = (name) => new Promise((resolve) => {
  const s = connect('\\0' + name);
  s.on('connect', () => { s.destroy(); resolve('connected'); });
  s.on('error', (e) => resolve(e.code));
});
const own = createServer((s) => s.destroy());
await new Promise((resolve) => own.listen('\\0' + ${JSON.stringify(abstractName)} + '-inside', resolve));
const out = {
  applied,
  readAllowed: attempt(() => readFileSync(join(dir, 'allowed', 'f'), 'utf8')),
  readDenied: attempt(() => readFileSync(join(dir, 'denied', 'f'), 'utf8')),
  writeAllowed: attempt(() => writeFileSync(join(dir, 'allowed', 'g'), 'x')),
  connectOutside: await tryConnect(${JSON.stringify(abstractName)}),
  connectInside: await tryConnect(${JSON.stringify(abstractName)} + '-inside'),
  signalParent: rawSyscall(62, process.ppid, 0),
};
own.close();
process.stdout.write(JSON.stringify(out));
`);
  t.same(r.applied, { abi, dropped: [] });
  t.equal(r.readAllowed, 'yes', 'a path inside the rules can be read');
  t.equal(r.readDenied, 'EACCES', 'a path outside the rules cannot');
  t.equal(r.writeAllowed, 'EACCES', 'read access does not allow writing');
  t.equal(r.connectOutside, 'EPERM', 'an abstract unix socket outside the domain is unreachable');
  t.equal(r.connectInside, 'connected', 'one inside the domain is reachable');
  t.same(r.signalParent, { result: -1, errno: 1 }, 'signalling a process outside the domain: EPERM');
});
