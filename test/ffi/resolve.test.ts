// The resolver every root-side path lookup goes through: beneath a root fd, no symlink in any
// component, the same refusals with openat2 and with the component walk used without it.
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPEN_FLAGS } from '../../src/ffi/arch.js';
import { close } from '../../src/ffi/libc.js';
import { PathRefused, makeDirsBeneath, openBeneath, openBeneathByWalk, openRoot, splitUnderRoot } from '../../src/ffi/resolve.js';

function tree(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'stk-resolve-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  writeFileSync(join(dir, 'a/b/file'), 'x');
  symlinkSync('/', join(dir, 'a/root-link'));
  symlinkSync('b', join(dir, 'a/rel-link'));
  return dir;
}

const openFds = () => readdirSync('/proc/self/fd').length;
const fdPath = (fd: number) => readlinkSync(`/proc/self/fd/${fd}`);

for (const [name, open] of [['openat2', openBeneath], ['component walk', openBeneathByWalk]] as const) {
  t.test(`${name}: opens what lies beneath, refuses every symlink and names it`, async (t) => {
    const dir = tree(t);
    const before = openFds();
    const root = openRoot(dir);
    try {
      const fd = open(root, 'a/b/file', OPEN_FLAGS.O_PATH);
      t.equal(fdPath(fd), join(dir, 'a/b/file'));
      close(fd);
      const self = open(root, '', OPEN_FLAGS.O_PATH);
      t.equal(fdPath(self), dir, 'an empty path is the root itself');
      close(self);
      t.throws(() => open(root, 'a/root-link/etc/passwd', 0, { label: 'input X' }), { name: 'PathRefused', message: /^input X: component "a\/root-link" is a symlink \(to "\/"\)/ });
      t.throws(() => open(root, 'a/rel-link/file', 0), PathRefused, 'a relative symlink too');
      t.throws(() => open(root, 'a/root-link', OPEN_FLAGS.O_PATH), PathRefused, 'a symlink as the last component');
      t.throws(() => open(root, '../etc', 0), { message: /component "\.\." is not allowed/ });
      t.throws(() => open(root, '/etc', 0), PathRefused);
      t.throws(() => open(root, 'a/missing', 0), { code: 'ENOENT' });
    } finally {
      close(root);
    }
    t.equal(openFds(), before, 'no fd left open');
  });
}

t.test('makeDirsBeneath creates what is missing, reports it, and refuses a symlink on the way', async (t) => {
  const dir = tree(t);
  const root = openRoot(dir);
  t.teardown(() => close(root));
  const made: string[] = [];
  const fd = makeDirsBeneath(root, 'a/b/c/d', 0o755, (_parent, name) => made.push(name));
  t.equal(fdPath(fd), join(dir, 'a/b/c/d'));
  close(fd);
  t.same(made, ['c', 'd']);
  t.throws(() => makeDirsBeneath(root, 'a/root-link/tmp/pwned', 0o755), PathRefused);
  t.same(readdirSync('/tmp').filter((n) => n === 'pwned'), [], 'nothing made through the link');
});

t.test('splitUnderRoot takes the longest root, by whole components', async (t) => {
  t.same(splitUnderRoot('/gnu/store/x-y/bin', ['/gnu', '/gnu/store']), { root: '/gnu/store', relative: 'x-y/bin' });
  t.same(splitUnderRoot('/gnu/store', ['/gnu/store/']), { root: '/gnu/store', relative: '' });
  t.equal(splitUnderRoot('/gnu/storefoo', ['/gnu/store']), undefined);
  t.same(splitUnderRoot('/etc/x', ['/']), { root: '/', relative: 'etc/x' });
});
