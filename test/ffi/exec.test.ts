// execve with the fd hygiene init does before it: stdio kept, everything else closed.
import t from 'tap';
import * as libc from '../../src/ffi/libc.js';
import { distUrl, ensureBuilt, runChild } from '../helpers/child.js';

t.before(ensureBuilt);

t.test('execve after clearing FD_CLOEXEC on stdio and marking fds from 3 close-on-exec', async (t) => {
  const result = runChild(`
import { openSync } from 'node:fs';
import * as libc from '${distUrl('ffi/libc.js')}';
import { CLOSE_RANGE_FLAGS } from '${distUrl('ffi/arch.js')}';
// An fd that would survive execve, as one inherited from a parent would.
libc.clearCloexec(openSync('/dev/null', 'r'));
for (const fd of [0, 1, 2]) libc.clearCloexec(fd);
// Marked, not closed: execve closes them after the other threads are gone, so none of
// Node's threads can trip over a vanished fd (closing them here aborted ~1 run in 100).
libc.closeRange(3, undefined, CLOSE_RANGE_FLAGS.CLOSE_RANGE_CLOEXEC);
libc.execve('/bin/sh', ['sh', '-c', 'echo "$GREETING"; ls /proc/$$/fd'], { GREETING: 'hello from execve' });
`);
  t.equal(result.status, 0, result.stderr);
  const [greeting, ...fds] = result.stdout.trim().split('\n');
  t.equal(greeting, 'hello from execve', 'argv and envp passed');
  t.same(fds.map(Number).sort(), [0, 1, 2], 'the shell started with exactly stdin, stdout and stderr');
});

t.test('a failing execve throws', async (t) => {
  t.throws(() => libc.execve('/nonexistent/builder', ['builder', '-x'], { A: '1' }), {
    message: 'execve("/nonexistent/builder", ["builder", "-x"], [1 vars]): ENOENT (No such file or directory)',
  });
});
