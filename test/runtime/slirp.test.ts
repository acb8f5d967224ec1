// network: slirp (fixed-output builds): what the builder sees of its network, what it cannot
// reach on the host, and that slirp4netns is gone after the build, whatever happened.
// Traffic goes only to 10.0.2.2 inside the build's own namespace (slirp's view of the host's
// loopback) and to the test's own listeners on 127.0.0.1 and abstract unix sockets.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { reapUid } from '../../src/pool/reap.js';
import { findSlirp } from '../../src/runtime/slirp.js';
import { CLEAN_ENV, IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, run, runArgs, runAsync, type Sandbox } from './helpers.js';

/** pids of the slirp4netns processes on the host (zombies, which hold nothing, left out). */
function slirpProcesses(): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === 'slirp4netns' && !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
    } catch {
      return false; // ended meanwhile
    }
  }).map(Number);
}

/** A listener that records what each connection sent. */
async function listen(address: { port: 0; host: '127.0.0.1' } | { path: string }): Promise<{ server: Server; received: string[] }> {
  const received: string[] = [];
  const server = createServer((socket) => {
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (data += d));
    socket.on('end', () => received.push(data));
    socket.on('error', () => received.push(data));
  });
  await new Promise<void>((ready) => server.listen(address, ready));
  return { server, received };
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port;
}

/** Connects to host port PORT through 10.0.2.2 from inside; prints "connected" or the error. */
const CONNECT_HOST = (port: number) => `if timeout 10 bash -c 'echo hello-from-build > /dev/tcp/10.0.2.2/${port}'; then echo connected; else echo not connected; fi`;

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  const sb = makePolicy('fixed-output');
  t.teardown(() => removeSandbox(sb));
  // The builds find slirp4netns through a directory of this file's own, so the processes counted
  // are this file's, whatever other test runs on the machine start meanwhile.
  const ownBin = mkdtempSync(join(tmpdir(), 'stk-slirp-bin-'));
  t.teardown(() => rmSync(ownBin, { recursive: true, force: true }));
  symlinkSync(findSlirp(), join(ownBin, 'slirp4netns'));
  const ENV = { ...CLEAN_ENV, PATH: `${ownBin}:${CLEAN_ENV.PATH ?? '/usr/bin:/bin'}` };
  const ours = (pid: number) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return argv.includes(ownBin) || argv.includes(sb.dir);
    } catch {
      return false; // ended meanwhile
    }
  };
  const newSlirps = () => slirpProcesses().filter(ours);

  // fixed-output sets no cgroup limits, so its builds make no cgroup: the cgroups leftovers()
  // sees (host-wide) belong to other test runs going on at the same time.
  const buildLeftovers = (box: Sandbox) => leftovers(box).filter((l) => !l.startsWith('cgroups under'));
  const noneLeft = (t: Test, box: Sandbox) => {
    t.same(newSlirps(), [], 'no slirp4netns process remains');
    t.same(buildLeftovers(box), [], 'nothing of the build remains');
  };

  t.test('the build has lo and tap0 up, 10.0.2.100/24, a default route via 10.0.2.2', async (t) => {
    const r = run(sb, 'ip -o link | cut -d: -f2 | tr -d " "; ip -o link show up | cut -d: -f2 | tr -d " "; echo ==; ' +
      'ip -o -4 addr show dev tap0 | grep -o "inet [^ ]*"; ip link show tap0 | grep -o "mtu [0-9]*"; echo ==; tail -n +2 /proc/net/route | cut -f1-4; cat /etc/resolv.conf', [], ENV);
    t.equal(r.status, 0, r.stderr);
    const [links, addr, routes] = r.stdout.split('==\n');
    t.same(links.trim().split('\n'), ['lo', 'tap0', 'lo', 'tap0'], 'lo and tap0, both up, nothing else');
    t.same(addr.trim().split('\n'), ['inet 10.0.2.100/24', 'mtu 65520']);
    // /proc/net/route is little-endian hex: 0202000A = 10.0.2.2, 0002000A = 10.0.2.0; flags 3 = UP|GATEWAY.
    t.same(routes.trim().split('\n'), ['tap0\t00000000\t0202000A\t0003', 'tap0\t0002000A\t00000000\t0001', 'nameserver 10.0.2.3']);
    noneLeft(t, sb);
  });

  t.test("the host's loopback is unreachable through 10.0.2.2", async (t) => {
    const { server, received } = await listen({ port: 0, host: '127.0.0.1' });
    t.teardown(() => server.close());
    const r = await runAsync(sb, CONNECT_HOST(portOf(server)), [], ENV);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout.trim().split('\n').pop(), 'not connected');
    t.same(received, [], 'the host listener got no connection');
    noneLeft(t, sb);
  });

  t.test('with allow_host_loopback: true it is reachable', async (t) => {
    const open = makePolicy('fixed-output', 'network: { mode: slirp, allow_host_loopback: true }\n');
    t.teardown(() => removeSandbox(open));
    const { server, received } = await listen({ port: 0, host: '127.0.0.1' });
    t.teardown(() => server.close());
    const r = await runAsync(open, CONNECT_HOST(portOf(server)), [], ENV);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout.trim(), 'connected');
    t.same(received, ['hello-from-build\n'], 'the host listener got what the build sent');
    noneLeft(t, open);
  });

  t.test("the host's abstract unix sockets are not the build's", async (t) => {
    const name = `stockade-slirp-test-${randomBytes(6).toString('hex')}`;
    const { server, received } = await listen({ path: '\0' + name });
    t.teardown(() => server.close());
    // Connect to the name, then listen on it and connect again: the second works only if the
    // name is free in the build's namespace, and shows the client works inside.
    const probe = `const net = require('net'); const name = '\\0${name}';
      const connect = (then) => net.connect(name).on('connect', function () { console.log('connected'); this.end(); then(); }).on('error', (e) => { console.log(e.code); then(); });
      connect(() => { const s = net.createServer((c) => c.resume()).listen(name, () => connect(() => s.close())); });`;
    const r = await runAsync(sb, `/usr/bin/node -e "${probe.replace(/"/g, '\\"')}"`, [], ENV);
    t.equal(r.status, 0, r.stderr);
    t.same(r.stdout.trim().split('\n'), ['ECONNREFUSED', 'connected'], "the host's listener is not there; the build's own is");
    t.same(received, [], 'the host listener got no connection');
    noneLeft(t, sb);
  });

  /** Starts a build and resolves once it printed "up", with the process and its output so far. */
  const startBuild = async (box: Sandbox, script: string) => {
    const child = spawn(process.execPath, runArgs(box, `echo up; ${script}`), { env: ENV });
    const out = { stdout: '', stderr: '' };
    child.stderr.on('data', (d) => (out.stderr += d));
    const status = new Promise<number | null>((done) => child.on('close', done));
    await new Promise<void>((up) => child.stdout.on('data', (d) => {
      out.stdout += d;
      if (out.stdout === 'up\n') up();
    }));
    return { child, out, status };
  };

  t.test('slirp4netns ends when the supervisor dies', async (t) => {
    const box = makePolicy('fixed-output');
    t.teardown(() => removeSandbox(box));
    const { child, status } = await startBuild(box, 'sleep 30');
    const [slirp] = newSlirps();
    t.equal(Number(readFileSync(`/proc/${slirp}/stat`, 'utf8').split(') ')[1].split(' ')[1]), child.pid, "slirp4netns is the supervisor's child");
    child.kill('SIGKILL');
    await status;
    for (let waited = 0; newSlirps().length && waited < 5000; waited += 100) await sleep(100);
    t.same(newSlirps(), [], 'slirp4netns is gone, its exit fd closed with the supervisor');
    // What the dead supervisor could not clean: the build itself (the daemon reaps it at start).
    for (let uid = box.firstUid; uid < box.firstUid + box.count; uid++) await reapUid(uid);
    t.same(buildLeftovers(box).filter((l) => !l.startsWith('build directories')), []);
  });

  t.test('slirp4netns ending during the build is reported; the build goes on without network', async (t) => {
    const { out, status } = await startBuild(sb, 'while ip link show tap0 >/dev/null 2>&1; do sleep 0.1; done; echo tap0 gone; ip -o link | cut -d: -f2 | tr -d " "');
    const [slirp] = newSlirps();
    t.ok(slirp, 'slirp4netns runs while the build does');
    process.kill(slirp, 'SIGKILL');
    t.equal(await status, 0, out.stderr);
    t.same(out.stdout.split('\n'), ['up', 'tap0 gone', 'lo', '']);
    t.match(out.stderr, /^stockade: \/\S+\/slirp4netns killed by SIGKILL during the build, which has no network any more/m);
    noneLeft(t, sb);
  });

  t.test('slirp4netns failing to start stops the build before it runs, and leaves nothing', async (t) => {
    const fake = join(sb.dir, 'fake-bin');
    mkdirSync(fake);
    writeFileSync(join(fake, 'slirp4netns'), '#!/bin/sh\necho "cannot open /dev/net/tun: fake failure" >&2\nexit 1\n');
    chmodSync(join(fake, 'slirp4netns'), 0o755);
    // Never reports ready and ignores its exit fd: the supervisor gives up and kills it. (A
    // script's process is named after the script, slirp4netns, so noneLeft sees it.)
    const silent = join(sb.dir, 'silent-bin');
    mkdirSync(silent);
    writeFileSync(join(silent, 'slirp4netns'), '#!/bin/sh\necho "starting" >&2\nwhile :; do sleep 1; done\n');
    chmodSync(join(silent, 'slirp4netns'), 0o755);
    const empty = join(sb.dir, 'empty-bin');
    mkdirSync(empty);
    const cases: [string, string, string][] = [
      ['not installed', empty, `stockade: network: slirp: slirp4netns not found in PATH (${empty}); install it (Debian package slirp4netns)\n`],
      ['failing', fake, `stockade: network: slirp: ${fake}/slirp4netns exited with status 1 before the network was ready: cannot open /dev/net/tun: fake failure\n`],
      ['never ready', silent, `stockade: network: slirp: ${silent}/slirp4netns did not report the network ready within 10 s: starting\n`],
    ];
    for (const [what, path, message] of cases) {
      const r = run(sb, 'echo the builder ran', [], { ...CLEAN_ENV, PATH: path });
      t.equal(r.status, 125, `${what}: exit 125 (setup failed)`);
      t.equal(r.stdout, '', `${what}: the builder never ran`);
      t.equal(r.stderr, message, `${what}: names what failed`);
      noneLeft(t, sb);
    }
  });

  t.test('a sandbox failing after slirp4netns started stops it too', async (t) => {
    // init cannot make a mount target under the file /etc/hosts: it fails once slirp4netns runs.
    const box = makePolicy('fixed-output', '', 4, '  paths: [{ source: /usr/bin, target: /etc/hosts/x }]\n');
    t.teardown(() => removeSandbox(box));
    const r = run(box, 'echo the builder ran', [], ENV);
    t.equal(r.status, 125);
    t.equal(r.stdout, '', 'the builder never ran');
    t.match(r.stderr, /sandbox setup failed: \S+\/policy\.yaml:10:11: filesystem\.paths\[0\]: mount at \/etc\/hosts\/x: openat2\(\d+, "hosts", .*\): ENOTDIR/);
    noneLeft(t, box);
  });
}
