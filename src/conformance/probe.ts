// The conformance probe: runs inside a sandbox as the builder (exec'd by a wrapper shell that
// recorded fds, stdin, environ and limits first) and prints what it observes as one JSON line.
// It judges nothing; the checks on the host compare the observation with the Plan.
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { errnoName, IFF_UP, KEY_SPEC, KEYCTL, SOCKET_TYPES, SYS } from '../ffi/arch.js';
import { interfaceFlags } from '../ffi/net.js';
import { X86_64_SYSCALLS } from '../linux/syscalls.js';
import { AF_VSOCK } from '../seccomp/policy-filter.js';
import { chmod, getresgid, getresuid, kill } from '../ffi/libc.js';
import { injectTtyInput, mknod, rawSyscall, type SyscallArg } from './calls.js';
import { KEYS_MARKER, PEER_MARKER, PROBE_MARKER, type CallResult, type DeviceEntry, type KeysConfig, type KeysReport, type MountEntry, type Observation, type PeerConfig, type PeerReport, type ProbeConfig } from './observation.js';

const S_IFCHR = 0o020000;
const S_IFREG = 0o100000;
const FCHMODAT2 = 452;
const AT_FDCWD = -100;
const NR = { open: 2, creat: 85, mknod: 133, openat: 257, mknodat: 259, openat2: 437 } as const;
const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_TMPFILE = 0o20200000;

function attempt(fn: () => unknown): CallResult {
  try {
    fn();
    return 'ok';
  } catch (err) {
    const e = err as { code?: string; errno?: number };
    if (typeof e.code === 'string') return e.code;
    return typeof e.errno === 'number' ? errnoName(Math.abs(e.errno)) : String(err);
  }
}

/** A raw syscall's answer: the errno name, or 'ok' when it returned without error. */
function raw(nr: number, args: SyscallArg[]): CallResult {
  const { result, errno } = rawSyscall(nr, ...args);
  return result === -1 ? errnoName(errno) : 'ok';
}

function keyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return out;
}

function readStart(dir: string): Observation['start'] {
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  const environ: Record<string, string> = {};
  for (const entry of read('.probe-environ').split('\0').filter(Boolean)) {
    const eq = entry.indexOf('=');
    environ[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  const limits: Observation['start']['limits'] = {};
  for (const line of read('.probe-limits').split('\n').slice(1)) {
    const m = /^Max (.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    if (m) limits[m[1]] = { soft: m[2], hard: m[3] };
  }
  return {
    // The wrapper printed its fd listing on stdout; the host side reads it from there.
    fds: [],
    stdin: read('.probe-stdin').trim(),
    environ,
    limits,
    signals: (({ SigIgn, SigBlk, SigCgt }) => ({ SigIgn, SigBlk, SigCgt }))(keyValues(read('.probe-status'))),
    timers: { real: intervalTimer(0), virtual: intervalTimer(1), prof: intervalTimer(2) },
  };
}

/**
 * ITIMER_REAL, _VIRTUAL or _PROF of this process (the builder's: the wrapper exec'd the probe),
 * value plus interval in µs. execve keeps interval timers, so one its init armed would be here.
 */
function intervalTimer(which: number): number {
  const itimerval = Buffer.alloc(32);
  const { result } = rawSyscall(X86_64_SYSCALLS.getitimer, which, itimerval);
  if (result === -1) return -1;
  const [intervalSec, intervalUsec, valueSec, valueUsec] = [0, 8, 16, 24].map((at) => Number(itimerval.readBigInt64LE(at)));
  return (intervalSec + valueSec) * 1e6 + intervalUsec + valueUsec;
}

/** Each way of making a file with mode 06755: its answer, and the mode the file got. */
function setidCreate(): Observation['setidCreate'] {
  const SETID = 0o6755;
  const out: Observation['setidCreate'] = {};
  const made = (route: string, path: string, call: () => { result: number; errno: number }) => {
    const { result, errno } = call();
    if (result >= 0 && route !== 'mknod' && route !== 'mknodat') closeSync(result);
    const exists = attempt(() => lstatSync(path)) === 'ok';
    out[route] = { result: result === -1 ? errnoName(errno) : 'ok', mode: exists ? lstatSync(path).mode & 0o7777 : 0 };
    if (exists) unlinkSync(path);
  };
  made('open', '.probe-setid-open', () => rawSyscall(NR.open, '.probe-setid-open', O_CREAT | O_WRONLY, SETID));
  made('openat', '.probe-setid-openat', () => rawSyscall(NR.openat, AT_FDCWD, '.probe-setid-openat', O_CREAT | O_WRONLY, SETID));
  made('creat', '.probe-setid-creat', () => rawSyscall(NR.creat, '.probe-setid-creat', SETID));
  made('mknod', '.probe-setid-mknod', () => rawSyscall(NR.mknod, '.probe-setid-mknod', S_IFREG | SETID, 0));
  made('mknodat', '.probe-setid-mknodat', () => rawSyscall(NR.mknodat, AT_FDCWD, '.probe-setid-mknodat', S_IFREG | SETID, 0));
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(O_CREAT | O_WRONLY), 0);
  how.writeBigUInt64LE(BigInt(SETID), 8);
  made('openat2', '.probe-setid-openat2', () => rawSyscall(NR.openat2, AT_FDCWD, '.probe-setid-openat2', how, how.length));
  // O_TMPFILE: an unnamed file with the mode, which linkat could give a name later.
  const tmp = rawSyscall(NR.openat, AT_FDCWD, '.', O_TMPFILE | O_WRONLY, SETID);
  out.tmpfile = tmp.result === -1 ? { result: errnoName(tmp.errno), mode: 0 } : { result: 'ok', mode: fstatSync(tmp.result).mode & 0o7777 };
  if (tmp.result >= 0) closeSync(tmp.result);
  return out;
}

function vsock(): CallResult {
  const { result, errno } = rawSyscall(SYS.socket, AF_VSOCK, SOCKET_TYPES.SOCK_STREAM, 0);
  if (result >= 0) closeSync(result);
  return result === -1 ? errnoName(errno) : 'ok';
}

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function mounts(): MountEntry[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((line) => {
    const [left, right] = line.split(' - ');
    const fields = left.split(' ');
    const [fstype, source, superOptions] = right.split(' ');
    return { target: unescapeMount(fields[4]), root: unescapeMount(fields[3]), device: fields[2], options: fields[5].split(','), fstype, source: unescapeMount(source), superOptions: superOptions.split(',') };
  });
}

function devices(dir = '/dev', prefix = ''): DeviceEntry[] {
  const out: DeviceEntry[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const st = lstatSync(path);
    const entry: DeviceEntry = { name: prefix + name, type: 'other' };
    if (st.isSymbolicLink()) Object.assign(entry, { type: 'symlink', target: readlinkSync(path) });
    else if (st.isCharacterDevice() || st.isBlockDevice()) {
      entry.type = st.isCharacterDevice() ? 'char' : 'block';
      entry.rdev = `${Math.floor(st.rdev / 256) & 0xfff}:${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`;
    } else if (st.isDirectory()) entry.type = 'dir';
    else if (st.isFile()) entry.type = 'file';
    out.push(entry);
    // devpts lists the build's own ptys, shm its files: their contents are not devices.
    if (st.isDirectory() && name !== 'pts' && name !== 'shm') out.push(...devices(path, prefix + name + '/'));
  }
  return out;
}

function etcFiles(dir = '/etc'): Observation['etc'] {
  const out: Observation['etc'] = {};
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isDirectory()) Object.assign(out, etcFiles(path));
    else out[path] = { content: attempt(() => readFileSync(path)) === 'ok' ? readFileSync(path, 'utf8') : '', mode: st.mode & 0o7777 };
  }
  return out;
}

function interfaces(): Observation['interfaces'] {
  const names = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean);
  const addresses = networkInterfaces();
  return names.sort().map((name) => ({
    name,
    up: (interfaceFlags(name) & IFF_UP) !== 0,
    addresses: (addresses[name] ?? []).map((a) => a.cidr ?? a.address).sort(),
  }));
}

function routes(): string[] {
  const v4 = readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).filter(Boolean).map((l) => l.trim().split(/\s+/).slice(0, 3).join(' '));
  const v6 = readFileSync('/proc/net/ipv6_route', 'utf8').split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/))
    .filter((f) => f[9] !== 'lo').map((f) => `${f[0]}/${parseInt(f[1], 16)} ${f[9]}`);
  return [...v4, ...v6];
}

function connectResult(options: { path: string } | { host: string; port: number }): Promise<CallResult> {
  return new Promise((resolve) => {
    const socket = connect(options as never);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('ETIMEDOUT');
    }, 3000);
    socket.on('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('ok');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? String(err));
    });
  });
}

async function observe(config: ProbeConfig): Promise<Observation> {
  const cwd = process.cwd();
  const own = join(cwd, '.probe-setuid');
  writeFileSync(own, '#!/bin/sh\n', { mode: 0o755 });
  const setuidResult = attempt(() => chmod(own, 0o6755));
  const setuidMode = lstatSync(own).mode & 0o7777;
  const setuidFchmodat2 = raw(FCHMODAT2, [AT_FDCWD, own, 0o4755, 0]);
  unlinkSync(own);
  const devTty = attempt(() => closeSync(openSync('/dev/tty', 'r')));
  const namespaces: Record<string, string> = {};
  for (const ns of readdirSync('/proc/self/ns')) namespaces[ns] = readlinkSync(`/proc/self/ns/${ns}`);
  const ids = { uid: getresuid(), gid: getresgid() };
  const status = keyValues(readFileSync('/proc/self/status', 'utf8'));
  const syscalls: Record<string, CallResult> = {};
  for (const s of config.syscalls) syscalls[`${s.arch}:${s.name}`] = raw(s.nr, [-1, -1, -1, -1, -1, -1]);
  return {
    start: readStart(cwd),
    pid: process.pid,
    procPids: readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b),
    cwd,
    uid: [ids.uid.real, ids.uid.effective, ids.uid.saved],
    gid: [ids.gid.real, ids.gid.effective, ids.gid.saved],
    groups: (status.Groups ?? '').split(/\s+/).filter(Boolean).map(Number),
    status,
    mounts: mounts(),
    devices: devices(),
    etc: etcFiles(),
    exists: Object.fromEntries(config.exists.map((p) => [p, attempt(() => lstatSync(p)) === 'ok'])),
    writable: Object.fromEntries(config.writable.map((dir) => {
      const file = join(dir, `.probe-write-${process.pid}`);
      const result = attempt(() => writeFileSync(file, 'x', { flag: 'wx' }));
      if (result === 'ok') unlinkSync(file);
      return [dir, result];
    })),
    outputsMade: Object.fromEntries(config.makeOutputs.map((output) => [output, attempt(() => {
      mkdirSync(output);
      writeFileSync(join(output, 'made'), 'made by the probe\n');
    })])),
    writeOpen: Object.fromEntries(config.writeOpen.map((path) => [path, attempt(() => closeSync(openSync(path, 'r+')))])),
    setuidChmod: { result: setuidResult, mode: setuidMode },
    setuidFchmodat2,
    setidCreate: setidCreate(),
    vsock: vsock(),
    chmodParent: attempt(() => chmod(dirname(cwd), 0o777)),
    mknod: attempt(() => mknod(join(cwd, '.probe-null'), S_IFCHR | 0o666, 1, 3)),
    syscalls,
    tty: { openDevTty: devTty, tiocsti: attempt(() => injectTtyInput(0, 'x')), sid: Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[3]) },
    killHost: attempt(() => kill(config.hostPid, 0)),
    abstractSocket: await connectResult({ path: `\0${config.hostAbstractSocket}` }),
    loopbackConnect: await connectResult({ host: '127.0.0.1', port: 1 }),
    interfaces: interfaces(),
    routes: routes(),
    hostname: hostname(),
    domainname: readFileSync('/proc/sys/kernel/domainname', 'utf8').trim(),
    namespaces,
    tmpSizeBytes: (() => {
      const st = statfsSync('/tmp');
      return st.blocks * st.bsize;
    })(),
  };
}

async function peer(config: PeerConfig): Promise<PeerReport> {
  const path = `\0${config.name}`;
  const until = Date.now() + config.holdMs;
  if (config.role === 'listen') {
    let accepted = 0;
    const server = createServer((socket) => {
      accepted++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const self = await connectResult({ path });
    accepted--;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, until - Date.now())));
    server.close();
    return { self, accepted };
  }
  let dial: CallResult = 'not tried';
  while (Date.now() < until && dial !== 'ok') {
    dial = await connectResult({ path });
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { dial };
}

function keys(config: KeysConfig): KeysReport {
  const search = (keyring: number, description: string) => raw(SYS.keyctl, [KEYCTL.SEARCH, keyring, 'user', description, 0]);
  const found = Object.fromEntries(config.find.map((d) => [d, { session: search(KEY_SPEC.SESSION, d), user: search(KEY_SPEC.USER, d), userSession: search(KEY_SPEC.USER_SESSION, d) }]));
  const plant = (keyring: number) => raw(SYS.add_key, ['user', config.plant!, Buffer.from('planted by a build'), 18, keyring]);
  return { uid: getresuid().real, found, ...(config.plant ? { planted: { user: plant(KEY_SPEC.USER), userSession: plant(KEY_SPEC.USER_SESSION) } } : {}) };
}

const request = JSON.parse(process.argv[2]) as ProbeConfig | { peer: PeerConfig } | { keys: KeysConfig };
if ('peer' in request) process.stdout.write(PEER_MARKER + JSON.stringify(await peer(request.peer)) + '\n');
else if ('keys' in request) process.stdout.write(KEYS_MARKER + JSON.stringify(keys(request.keys)) + '\n');
else process.stdout.write(PROBE_MARKER + JSON.stringify(await observe(request)) + '\n');
