// Unit tests: how failures are rendered, without changing the test process.
import t from 'tap';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errnoName, errnoNumber, MOUNT_FLAGS, OPEN_FLAGS, CLONE_FLAGS } from '../../src/ffi/arch.js';
import { SyscallError, quote, renderEnum, renderFlags, renderMode } from '../../src/ffi/errors.js';
import * as libc from '../../src/ffi/libc.js';
import { capName, capNumber, capMaskNames, CAPABILITIES, lastCap } from '../../src/ffi/caps.js';

t.test('errno names', async (t) => {
  t.equal(errnoName(2), 'ENOENT');
  t.equal(errnoName(95), 'ENOTSUP', 'the first name of an aliased errno wins');
  t.equal(errnoName(4000), 'errno 4000');
  t.equal(errnoNumber('EPERM'), 1);
  t.equal(errnoNumber('ENOPE'), undefined);
});

t.test('flag and value rendering', async (t) => {
  t.equal(renderFlags(MOUNT_FLAGS.MS_BIND | MOUNT_FLAGS.MS_REC, MOUNT_FLAGS), 'MS_BIND|MS_REC');
  t.equal(renderFlags(0, MOUNT_FLAGS), '0');
  t.equal(renderFlags(MOUNT_FLAGS.MS_RDONLY | 0x40000000, MOUNT_FLAGS), 'MS_RDONLY|0x40000000', 'unknown bits shown in hex');
  t.equal(renderFlags(CLONE_FLAGS.CLONE_NEWNS | CLONE_FLAGS.CLONE_NEWNET, CLONE_FLAGS), 'CLONE_NEWNS|CLONE_NEWNET');
  t.equal(renderFlags(OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_CLOEXEC, OPEN_FLAGS), 'O_CLOEXEC|O_PATH');
  t.equal(renderEnum(2, { A: 1, B: 2 }), 'B');
  t.equal(renderEnum(7, { A: 1 }), '7');
  t.equal(renderMode(0o4755), '04755');
  t.equal(quote('a"b\n'), '"a\\"b\\n"');
  t.equal(quote(null), 'NULL');
});

t.test('SyscallError names the call, the arguments and errno', async (t) => {
  const err = new SyscallError('mount', '"a" -> "b", MS_BIND', 2, 'No such file or directory');
  t.equal(err.message, 'mount("a" -> "b", MS_BIND): ENOENT (No such file or directory)');
  t.equal(err.code, 'ENOENT');
  t.equal(err.errno, 2);
  t.equal(err.call, 'mount');
});

t.test('failing wrappers throw, with readable arguments', async (t) => {
  t.throws(() => libc.chdir('/nonexistent/stockade'), {
    name: 'SyscallError',
    message: 'chdir("/nonexistent/stockade"): ENOENT (No such file or directory)',
  });
  t.throws(() => libc.close(-1), { message: 'close(-1): EBADF (Bad file descriptor)' });
  t.throws(() => libc.open('/nonexistent/stockade', OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_CLOEXEC), {
    message: 'open("/nonexistent/stockade", O_RDONLY|O_CLOEXEC|O_PATH): ENOENT (No such file or directory)',
  });
  t.throws(() => libc.setRlimit('core', 10, 5), { message: 'prlimit(0, RLIMIT_CORE, {10, 5}, NULL): EINVAL (Invalid argument)' });
  t.throws(() => libc.setRlimit('cores', 0, 0), { message: /unknown rlimit 'cores'/ });
  t.throws(() => libc.setPersonality(['ADDR_NO_RANDOM']), { message: /unknown personality 'ADDR_NO_RANDOM'/ });
  t.throws(() => libc.fcntl(-1, 1), { message: 'fcntl(-1, F_GETFD): EBADF (Bad file descriptor)' });
  t.throws(() => libc.socket(12345, 1), { message: 'socket(12345, SOCK_STREAM, 0): EAFNOSUPPORT (Address family not supported by protocol)' });
});

t.test('reading calls return typed values', async (t) => {
  const uid = process.getuid!();
  t.same(libc.getresuid(), { real: uid, effective: uid, saved: uid });
  const gid = process.getgid!();
  t.same(libc.getresgid(), { real: gid, effective: gid, saved: gid });
  const nofile = libc.getRlimit('nofile');
  t.type(nofile.soft, 'number');
  t.type(libc.getNoNewPrivs(), 'boolean');
  const fd = libc.open('/', OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_CLOEXEC);
  t.equal(libc.getCloexec(fd), true);
  libc.clearCloexec(fd);
  t.equal(libc.getCloexec(fd), false, 'FD_CLOEXEC cleared');
  libc.close(fd);
});

t.test('raw syscall reports result and errno', async (t) => {
  t.same(libc.rawSyscall(3 /* close */, -1), { result: -1, errno: 9 });
  t.same(libc.rawSyscall(39 /* getpid */), { result: process.pid, errno: 0 });
  t.same(libc.rawSyscall(90 /* chmod */, '/nonexistent/stockade', 0o755), { result: -1, errno: 2 });
});

t.test('SO_PEERCRED names the peer', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-peercred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'sock');
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const client = connect(path);
  const socket = await accepted;
  const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
  t.same(libc.getPeerCred(fd), { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
  client.destroy();
  socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

t.test('capability table', async (t) => {
  t.equal(CAPABILITIES.length, 41);
  t.equal(capNumber('CAP_SYS_ADMIN'), 21);
  t.equal(capNumber('sys_admin'), 21);
  t.equal(capNumber('checkpoint_restore'), 40);
  t.equal(capName(0), 'CAP_CHOWN');
  t.equal(capName(41), 'cap_41');
  t.throws(() => capNumber('CAP_NOPE'), { message: "unknown capability 'CAP_NOPE'" });
  t.same(capMaskNames((1n << 21n) | 1n), ['CAP_CHOWN', 'CAP_SYS_ADMIN']);
  t.ok(lastCap() >= 40, 'the kernel knows at least the 41 listed capabilities');
});
