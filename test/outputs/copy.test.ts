// What the hand-over copies: sparse files stay sparse, the outputs' bytes can be capped, and a
// journal hears of every host change before it is made.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS } from '../../src/plan/defaults.js';
import { handOver, type HandOverJournal } from '../../src/runtime/outputs.js';
import { openRoot } from '../../src/ffi/resolve.js';
import { close } from '../../src/ffi/libc.js';
import { IS_ROOT, NOT_ROOT_REASON, makePolicy, removeSandbox, run } from '../runtime/helpers.js';
import { outputArgs, ownLeftovers } from './helpers.js';

/** No account needed: the trees only need an owner that is not root. */
const BUILD_UID = 2_100_000_000 + randomBytes(2).readUInt16BE(0);
const GiB = 1 << 30;

/** A work directory standing for the build directory (`sources`) and an outputs.under root (`root`), removed at the end. */
function workDir(t: Test): { root: string; sources: string; dirFd: number } {
  const work = mkdtempSync(join(tmpdir(), 'stk-copy-handover-'));
  const root = join(work, 'store');
  const sources = join(work, 'build');
  mkdirSync(root);
  mkdirSync(sources);
  const dirFd = openRoot(sources);
  t.teardown(() => {
    close(dirFd);
    rmSync(work, { recursive: true, force: true });
  });
  return { root, sources, dirFd };
}

/** A private output directory `name` of the build user, with `files` (name -> content). */
function privateOutput(sources: string, name: string, files: Record<string, string | Buffer>): void {
  const dir = join(sources, name);
  mkdirSync(dir);
  chownSync(dir, BUILD_UID, BUILD_UID);
  for (const [file, content] of Object.entries(files)) {
    writeFileSync(join(dir, file), content);
    chownSync(join(dir, file), BUILD_UID, BUILD_UID);
  }
}

function bytesAt(path: string, offset: number, length: number): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return buf.toString('latin1');
  } finally {
    closeSync(fd);
  }
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a 2 GiB sparse file is handed over sparse: same size and content, (almost) no blocks', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const script = [
      'mkdir "$OUT"', 'cd "$OUT"', 'printf head > f', 'truncate -s 2G f',
      `printf middle | dd of=f bs=1 seek=${GiB} conv=notrunc 2>/dev/null`,
      `printf tail | dd of=f bs=1 seek=${2 * GiB - 4} conv=notrunc 2>/dev/null`,
      'truncate -s 3G trailing-hole', 'printf start | dd of=trailing-hole conv=notrunc 2>/dev/null',
    ].join('; ');
    const r = run(sb, script, outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    const st = statSync(join(out, 'f'));
    t.equal(st.size, 2 * GiB, 'the size is kept');
    t.ok(st.blocks * 512 <= 1 << 20, `${st.blocks} blocks of 512 bytes allocated (at most 1 MiB for 2 GiB)`);
    t.same([bytesAt(join(out, 'f'), 0, 4), bytesAt(join(out, 'f'), GiB, 6), bytesAt(join(out, 'f'), 2 * GiB - 4, 4)], ['head', 'middle', 'tail'], 'the data is where it was');
    t.same([...Buffer.from(bytesAt(join(out, 'f'), 4, 64), 'latin1')], Array(64).fill(0), 'a hole reads as zeros');
    t.same([...Buffer.from(bytesAt(join(out, 'f'), GiB + 4096, 64), 'latin1')], Array(64).fill(0), 'so does one in the middle');
    const trailing = statSync(join(out, 'trailing-hole'));
    t.same([trailing.size, bytesAt(join(out, 'trailing-hole'), 0, 5)], [3 * GiB, 'start'], 'a file ending in a hole keeps its size');
    t.ok(trailing.blocks * 512 <= 1 << 20, `trailing hole: ${trailing.blocks} blocks`);
    t.same(ownLeftovers(sb), []);
  });

  t.test('from another kind of filesystem (tmpfs, where copy_file_range cannot reach), files are copied whole and holes stay holes', async (t) => {
    if (!existsSync('/dev/shm') || statSync('/dev/shm').dev === statSync(tmpdir()).dev) {
      t.plan(0, 'needs /dev/shm on a filesystem other than the temporary directory');
      return;
    }
    const { root } = workDir(t);
    const shm = mkdtempSync('/dev/shm/stk-copy-handover-');
    const shmFd = openRoot(shm);
    t.teardown(() => {
      close(shmFd);
      rmSync(shm, { recursive: true, force: true });
    });
    const content = randomBytes(3 << 20);
    privateOutput(shm, 'a', { whole: content, sparse: '' });
    const sparse = join(shm, 'a', 'sparse');
    truncateSync(sparse, 256 << 20);
    const fd = openSync(sparse, 'r+');
    try {
      writeSync(fd, 'far', 200 << 20);
    } finally {
      closeSync(fd);
    }
    const report = await handOver([join(root, 'a')], { dirFd: shmFd, from: [{ dir: '', name: 'a' }] }, BUILD_UID, DEFAULTS.outputs, { outputsUnder: [root] });
    t.equal(report.outputs[0].bytes, content.length + (256 << 20), 'apparent bytes reported');
    t.ok(readFileSync(join(root, 'a', 'whole')).equals(content), 'a file of data is copied whole');
    const st = statSync(join(root, 'a', 'sparse'));
    t.same([st.size, bytesAt(join(root, 'a', 'sparse'), 200 << 20, 3)], [256 << 20, 'far'], 'the sparse file keeps its size and data');
    t.ok(st.blocks * 512 <= 1 << 20, `${st.blocks} blocks of 512 bytes allocated for 256 MiB`);
  });

  t.test('outputs over maxBytes fail the hand-over, naming the limit; nothing is installed', async (t) => {
    const { root, sources, dirFd } = workDir(t);
    privateOutput(sources, 'a', { f: Buffer.alloc(600), g: Buffer.alloc(300) });
    privateOutput(sources, 'b', { h: Buffer.alloc(200) });
    const outputs = [join(root, 'new', 'a'), join(root, 'b')];
    const over = handOver(outputs, { dirFd, from: [{ dir: '', name: 'a' }, { dir: '', name: 'b' }] }, BUILD_UID, DEFAULTS.outputs, { outputsUnder: [root], maxBytes: 1099 });
    await t.rejects(over, { name: 'OutputRefused', message: 'outputs exceed limits.output_bytes (1099 bytes)' });
    t.same(readdirSync(root), [], 'nothing installed, no directory or staging left');

    const exact = await handOver(outputs, { dirFd, from: [{ dir: '', name: 'a' }, { dir: '', name: 'b' }] }, BUILD_UID, DEFAULTS.outputs, { outputsUnder: [root], maxBytes: 1100 });
    t.same(exact.outputs.map((o) => o.bytes), [900, 200], 'exactly at the limit is fine');
    t.ok(existsSync(join(root, 'new', 'a', 'g')) && existsSync(join(root, 'b', 'h')), 'both outputs installed');
  });

  t.test('the byte cap counts apparent bytes: a sparse file counts its whole size', async (t) => {
    const { root, sources, dirFd } = workDir(t);
    privateOutput(sources, 'a', {});
    const sparse = join(sources, 'a', 'sparse');
    writeFileSync(sparse, '');
    chownSync(sparse, BUILD_UID, BUILD_UID);
    truncateSync(sparse, GiB); // 1 GiB apparent, no block allocated
    const over = handOver([join(root, 'a')], { dirFd, from: [{ dir: '', name: 'a' }] }, BUILD_UID, DEFAULTS.outputs, { outputsUnder: [root], maxBytes: GiB - 1 });
    await t.rejects(over, { message: `outputs exceed limits.output_bytes (${GiB - 1} bytes)` });
    t.same(readdirSync(root), []);
    const none = await handOver([join(root, 'a')], { dirFd, from: [{ dir: '', name: 'a' }] }, BUILD_UID, DEFAULTS.outputs, { outputsUnder: [root], maxBytes: null });
    t.equal(none.outputs[0].bytes, GiB, 'no cap with null');
  });

  t.test('a journal hears every directory, staging directory and install before it is made, then complete', async (t) => {
    const { root, sources, dirFd } = workDir(t);
    privateOutput(sources, 'a', { f: 'a' });
    privateOutput(sources, 'b', { g: 'b' });
    mkdirSync(join(root, 'existing'));
    const heard: string[] = [];
    const seen = (relative: string) => (existsSync(join(root, relative)) ? 'present' : 'absent');
    const journal: HandOverJournal = {
      creating: (e) => heard.push(`creating ${e.kind} ${e.root === root ? '' : e.root}:${e.relative.replace(/\.stockade-handover-[0-9a-f]+$/, '.stockade-handover-*')} (${seen(e.relative)})`),
      installing: (e) => heard.push(`installing ${e.root === root ? '' : e.root}:${e.relative} (${seen(e.relative)})`),
      complete: () => heard.push(`complete (${seen('existing/new1/new2/a')}, ${seen('b')})`),
    };
    const outputs = [join(root, 'existing', 'new1', 'new2', 'a'), join(root, 'b')];
    await handOver(outputs, { dirFd, from: [{ dir: '', name: 'a' }, { dir: '', name: 'b' }] }, BUILD_UID, DEFAULTS.outputs, { outputsUnder: [root], journal });
    t.same(heard, [
      'creating directory :existing/new1 (absent)',
      'creating directory :existing/new1/new2 (absent)',
      'creating staging :existing/new1/new2/.stockade-handover-* (absent)',
      'creating staging :.stockade-handover-* (absent)',
      'installing :existing/new1/new2/a (absent)',
      'installing :b (absent)',
      'complete (present, present)',
    ]);
    t.equal(readFileSync(join(root, 'existing', 'new1', 'new2', 'a', 'f'), 'utf8'), 'a');
  });

  t.test('a journal that fails stops the hand-over: nothing installed, nothing left', async (t) => {
    const { root, sources, dirFd } = workDir(t);
    privateOutput(sources, 'a', { f: 'a' });
    privateOutput(sources, 'b', { g: 'b' });
    const journal: HandOverJournal = {
      creating: () => {},
      installing: (e) => {
        if (e.relative === 'b') throw new Error('registry full');
      },
      complete: () => {},
    };
    const outputs = [join(root, 'new', 'a'), join(root, 'b')];
    await t.rejects(handOver(outputs, { dirFd, from: [{ dir: '', name: 'a' }, { dir: '', name: 'b' }] }, BUILD_UID, DEFAULTS.outputs, { outputsUnder: [root], journal }), { message: 'registry full' });
    t.same(readdirSync(root), [], 'the first output, installed already, is removed again with its directory');
  });
}
