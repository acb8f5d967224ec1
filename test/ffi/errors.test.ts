// Unit tests: how failures are rendered, without changing the test process.
import t from 'tap';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errnoName, errnoNumber, MOUNT_FLAGS, OPEN_FLAGS, CLONE_FLAGS } from '../../src/ffi/arch.js';
import { SyscallError, quote, renderEnum, renderFlags, renderMode } from '../../src/ffi/errors.js';
import * as libc from '../../src/ffi/libc.js';
import { dropBoundingSet } from '../../src/ffi/caps.js';

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
  t.equal(libc.getpid(), process.pid);
});

t.test('clearCloexec lets an fd survive execve', async (t) => {
  // fdinfo's flags are the open flags in octal, O_CLOEXEC included.
  const cloexec = (fd: number) => (parseInt(/^flags:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8) & OPEN_FLAGS.O_CLOEXEC) !== 0;
  const fd = libc.open('/', OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_CLOEXEC);
  t.teardown(() => libc.close(fd));
  t.equal(cloexec(fd), true);
  libc.clearCloexec(fd);
  t.equal(cloexec(fd), false, 'FD_CLOEXEC cleared');
  t.equal(libc.fcntl(fd, 1 /* F_GETFD */), 0, 'F_GETFD agrees');
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

t.test('an unknown capability to keep is refused before anything is dropped', async (t) => {
  const bounding = () => /^CapBnd:\s+(\w+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1];
  const before = bounding();
  t.throws(() => dropBoundingSet(['sys_admin', 'CAP_NOPE']), { message: "unknown capability 'CAP_NOPE'" });
  t.equal(bounding(), before, 'the bounding set is unchanged');
});
