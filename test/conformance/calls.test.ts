// The probe's own calls: raw answers instead of exceptions, and readable refusals.
import t from 'tap';
import { closeSync, openSync } from 'node:fs';
import { SYS } from '../../src/ffi/arch.js';
import { injectTtyInput, mknod, rawSyscall } from '../../src/conformance/calls.js';

t.test('a raw syscall reports its result and errno', async (t) => {
  t.same(rawSyscall(3 /* close */, -1), { result: -1, errno: 9 });
  t.same(rawSyscall(39 /* getpid */), { result: process.pid, errno: 0 });
  t.same(rawSyscall(SYS.chmod, '/nonexistent/stockade', 0o755), { result: -1, errno: 2 });
});

t.test('mknod names the node type, mode and device numbers', async (t) => {
  t.throws(() => mknod('/nonexistent/stockade/null', 0o020666, 1, 3), {
    name: 'SyscallError',
    message: 'mknod("/nonexistent/stockade/null", S_IFCHR|0666, 1:3): ENOENT (No such file or directory)',
  });
});

t.test("TIOCSTI reports the kernel's answer", async (t) => {
  const fd = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(fd));
  t.throws(() => injectTtyInput(fd, 'x'), { message: `ioctl(${fd}, TIOCSTI, "x"): ENOTTY (Inappropriate ioctl for device)` });
});
