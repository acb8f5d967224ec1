// Walking and removing trees through directory fds (build-dir clean-up, CVE-2025-46415, and
// output hand-over): any depth, with a bounded number of open fds, never following a symlink.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirChain, WALK_WINDOW, openDirAt, removeTree } from '../../src/ffi/fsat.js';

/** A chain `d/d/d/...` of `depth` directories under `root`, a file every 1,000 levels; made with relative paths (beyond PATH_MAX). */
function deepChain(root: string, depth: number): void {
  const r = spawnSync('/usr/bin/perl', ['-e', `for my $i (1..${depth}) { mkdir "d" or die "mkdir: $!"; chdir "d" or die "chdir: $!"; if ($i % 1000 == 0) { open my $f, ">", "f" or die; close $f } }`], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`making the deep tree failed: ${r.stderr}`);
}

/** A temp dir, removed at the end whatever happened (rm -rf walks any depth). */
function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'stk-rmtree-'));
  t.teardown(() => void spawnSync('/bin/rm', ['-rf', dir]));
  return dir;
}

const openFds = () => readdirSync('/proc/self/fd').length;

t.test('a tree 20,000 directories deep is removed, and no fd is left open', async (t) => {
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  deepChain(tree, 20_000);
  const before = openFds();
  t.doesNotThrow(() => removeTree(tree));
  t.notOk(existsSync(tree), 'the tree is gone');
  t.same(readdirSync(dir), [], 'nothing else left next to it');
  t.equal(openFds(), before, 'no fd leaked');
});

t.test('wide and deep at once: every entry goes', async (t) => {
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  for (let i = 0; i < 5; i++) {
    const branch = join(tree, `b${i}`);
    mkdirSync(branch);
    for (let j = 0; j < 50; j++) writeFileSync(join(branch, `f${j}`), 'x');
    deepChain(branch, 300);
  }
  removeTree(tree);
  t.notOk(existsSync(tree));
});

t.test('symlinks in the tree are removed as links, never followed', async (t) => {
  const dir = tempDir(t);
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'keep'), 'kept\n');
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  deepChain(tree, 200);
  let deep = tree;
  for (let i = 0; i < 150; i++) deep = join(deep, 'd');
  symlinkSync(outside, join(deep, 'link'));
  symlinkSync(outside, join(tree, 'top-link'));
  removeTree(tree);
  t.notOk(existsSync(tree));
  t.equal(readFileSync(join(outside, 'keep'), 'utf8'), 'kept\n', 'the symlinks\u2019 target is untouched');
});

t.test('a DirChain holds at most WALK_WINDOW fds, reopens what it closed, and fails if a directory was replaced', async (t) => {
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  deepChain(tree, 300);
  const rootFd = openSync(tree, 'r');
  t.teardown(() => closeSync(rootFd));
  const before = openFds();
  const walk = () => {
    const chain = new DirChain(rootFd);
    for (let i = 0; i < 300; i++) chain.enter('d', openDirAt(chain.fd(), 'd'));
    t.equal(openFds() - before, WALK_WINDOW, `${WALK_WINDOW} fds held at depth 300`);
    return chain;
  };
  const chain = walk();
  while (chain.depth > 1) chain.leave();
  t.ok(chain.fd() >= 0, 'back up at depth 1 through reopened directories');
  chain.close();
  t.equal(openFds(), before, 'all closed');

  const again = walk();
  while (again.depth > 100) again.leave();
  // Swap level 10 for another directory of the same name while its fd is closed.
  let level9 = tree;
  for (let i = 0; i < 9; i++) level9 = join(level9, 'd');
  renameSync(join(level9, 'd'), join(dir, 'moved'));
  mkdirSync(join(level9, 'd'));
  renameSync(join(dir, 'moved', 'd'), join(level9, 'd', 'd'));
  t.throws(() => again.fd(), /directory "d" \(level 10\) was replaced while it was walked/);
  again.close();
  t.equal(openFds(), before, 'all closed after the failure');
});

t.test('names that are not UTF-8 are removed too', async (t) => {
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  const latin1 = Buffer.concat([Buffer.from(`${tree}/`), Buffer.from([0x63, 0x61, 0x66, 0xe9])]);
  mkdirSync(latin1);
  writeFileSync(Buffer.concat([latin1, Buffer.from('/'), Buffer.from([0xff])]), 'x');
  t.doesNotThrow(() => removeTree(tree));
  t.notOk(existsSync(tree));
});
