// The build registry: a build killed at any step of its hand-over (a child process holding its
// record, killed -9) is cleaned after by the next admission; claims on overlapping outputs are
// refused while their holder lives; a record's paths that were raced are left alone.
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admit, recoverStale } from '../../src/runtime/records.js';
import type { Plan } from '../../src/plan/types.js';
import { IS_ROOT, NOT_ROOT_REASON, ROOT } from './helpers.js';

/** What admission reads of a Plan. */
function planOf(outputs: string[], under: string[]): Plan {
  return { build: { name: 'rec-test', outputs, outputsUnder: under }, outputs: { owner: { uid: 0, gid: 0 } } } as unknown as Plan;
}

/**
 * A build in another process: admitted with `outputs`, it then makes on disk what each step
 * says, noting it in its record first as the runtime and its hand-over do, says `ready`, and
 * waits to be killed.
 */
const HOLDER = `
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
const { admit } = await import(process.argv[1]);
const { registry, outputs, under, steps } = JSON.parse(process.argv[2]);
const plan = { build: { name: 'held', outputs, outputsUnder: under }, outputs: { owner: { uid: 0, gid: 0 } } };
const record = await admit(plan, outputs, { registry });
for (const s of steps) {
  if (s.do === 'builddir') { mkdirSync(s.path, { mode: 0o700 }); record.noteBuildDir(s.path); }
  if (s.do === 'directory') { record.creating({ root: s.root, relative: s.relative, kind: 'directory' }); mkdirSync(s.root + '/' + s.relative, { mode: 0o755 }); }
  if (s.do === 'staging') {
    record.creating({ root: s.root, relative: s.relative, kind: 'staging' });
    mkdirSync(s.root + '/' + s.relative + '/out', { recursive: true, mode: 0o700 });
    writeFileSync(s.root + '/' + s.relative + '/out/f', 'staged');
  }
  if (s.do === 'install') { record.installing({ root: s.root, relative: s.relative }); renameSync(s.root + '/' + s.staging + '/out', s.root + '/' + s.relative); }
  if (s.do === 'complete') record.complete();
}
process.stdout.write('ready\\n');
setInterval(() => {}, 1000);
`;

type Step = Record<string, string>;

/** Starts a holder; resolves once it holds its record, with a kill -9 that waits for its end. */
async function holder(registry: string, outputs: string[], under: string[], steps: Step[] = []): Promise<{ kill9: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, join(ROOT, 'dist/runtime/records.js'), JSON.stringify({ registry, outputs, under, steps })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('close', (code) => reject(new Error(`holder exited (${code}): ${stderr}`)));
  });
  return {
    kill9: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

function records(registry: string): string[] {
  return readdirSync(registry).filter((n) => n.endsWith('.rec'));
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  const top = mkdtempSync(join(tmpdir(), 'stk-rec-'));
  t.teardown(() => rmSync(top, { recursive: true, force: true }));
  let n = 0;
  /** A fresh registry and outputs root (`store`) for one test. */
  const fresh = () => {
    const dir = join(top, String(n++));
    mkdirSync(join(dir, 'store'), { recursive: true });
    return { dir, registry: join(dir, 'registry'), store: join(dir, 'store') };
  };

  t.test('outputs that overlap a live build are refused, naming both paths, in another process or this one', async (t) => {
    const { registry, store } = fresh();
    const held = await holder(registry, [`${store}/a/out`], [store]);
    t.teardown(() => held.kill9());
    const refused = async (output: string) => {
      try {
        (await admit(planOf([output], [store]), [output], { registry })).release();
        return 'admitted';
      } catch (err) {
        return (err as Error).message;
      }
    };
    t.match(await refused(`${store}/a/out/sub`), `output ${store}/a/out/sub lies under output ${store}/a/out of build held (`);
    t.match(await refused(`${store}/a`), `output ${store}/a is a prefix of output ${store}/a/out of build held (`);
    t.match(await refused(`${store}/a/out`), `output ${store}/a/out is also output ${store}/a/out of build held (`);
    t.equal(await refused(`${store}/a/outer`), 'admitted', 'a sibling whose name only starts the same is not under it');
    t.equal(await refused(`${store}/b`), 'admitted');
    t.equal(records(registry).length, 1, "the live build's record is left alone by every admission");

    const mine = await admit(planOf([`${store}/c`], [store]), [`${store}/c`], { registry });
    t.match(await refused(`${store}/c/d`), `output ${store}/c/d lies under output ${store}/c of build rec-test (${mine.id}, pid ${process.pid})`, 'a claim of this process counts too');
    mine.release();
    t.equal(await refused(`${store}/c/d`), 'admitted', 'a released claim is gone');

    await held.kill9();
    t.equal(await refused(`${store}/a/out/sub`), 'admitted', "a dead build's claim is gone");
    t.same(records(registry), [], 'and so is its record');
  });

  // The steps of a hand-over of output store/made/deeper/out whose directories made/deeper it makes.
  const stages: { stage: string; steps: number; left: string[]; gone: string[] }[] = [
    { stage: 'making directories on the way', steps: 3, left: [], gone: ['made'] },
    { stage: 'staging', steps: 4, left: [], gone: ['made'] },
    { stage: 'installing', steps: 5, left: [], gone: ['made'] },
    { stage: 'complete', steps: 6, left: ['made/deeper/out/f'], gone: ['made/deeper/.stockade-handover-out-0123456789ab'] },
  ];
  for (const { stage, steps, left, gone } of stages) {
    t.test(`kill -9 at hand-over step "${stage}": the next admission undoes what the hand-over did and removes the build dir`, async (t) => {
      const { dir, registry, store } = fresh();
      const output = `${store}/made/deeper/out`;
      const staging = 'made/deeper/.stockade-handover-out-0123456789ab';
      const all: Step[] = [
        { do: 'builddir', path: join(dir, 'guix-build-held.drv-0') },
        { do: 'directory', root: store, relative: 'made' },
        { do: 'directory', root: store, relative: 'made/deeper' },
        { do: 'staging', root: store, relative: staging },
        { do: 'install', root: store, relative: 'made/deeper/out', staging },
        { do: 'complete' },
      ];
      const held = await holder(registry, [output], [store], all.slice(0, steps));
      t.ok(existsSync(join(dir, 'guix-build-held.drv-0')) && existsSync(join(store, 'made/deeper')), 'the holder made its build dir and directories');
      await held.kill9();
      t.equal(records(registry).length, 1, "the dead build's record is still there");

      const next = await admit(planOf([output], [store]), [output], { registry, onRemoved: () => {} }).catch((err: Error) => err);
      t.notOk(next instanceof Error, `the same output is admitted again: ${next instanceof Error ? next.message : ''}`);
      if (!(next instanceof Error)) next.release();
      t.notOk(existsSync(join(dir, 'guix-build-held.drv-0')), 'the build directory is gone');
      for (const path of gone) t.notOk(existsSync(join(store, path)), `${path} is gone`);
      for (const path of left) t.ok(existsSync(join(store, path)), `${path}, handed over, stays`);
      t.same(readdirSync(store).filter((name) => !left.some((l) => l.startsWith(name))), [], 'nothing else is in the outputs root');
      t.same(records(registry), [], 'no record is left');
    });
  }

  t.test('the daemon recovery reports each leftover it removes, naming the dead build', async (t) => {
    const { registry, store } = fresh();
    const staging = '.stockade-handover-out-0123456789ab';
    const held = await holder(registry, [`${store}/out`], [store], [{ do: 'staging', root: store, relative: staging }]);
    await held.kill9();
    const lines = await recoverStale(registry);
    t.match(lines, [new RegExp(`^removed hand-over staging ${store}/${staging}, of build [0-9a-f]{16} \\(held\\), pid \\d+$`)]);
    t.same(readdirSync(store), []);
  });

  /** Writes a dead build's record as a build would have: its header, then `entries`. */
  function deadRecord(registry: string, outputs: string[], under: string[], entries: object[]): void {
    mkdirSync(registry, { recursive: true, mode: 0o700 });
    const header = { t: 'build', id: randomBytes(8).toString('hex'), name: 'dead', pid: 1, boot: '', since: new Date().toISOString(), outputs, claims: outputs, under, owner: 0 };
    writeFileSync(join(registry, `${header.id}.rec`), [header, ...entries].map((e) => JSON.stringify(e) + '\n').join(''), { mode: 0o600 });
  }

  /** A root-owned 0700 directory holding a file: what must survive. */
  function victim(path: string): void {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    writeFileSync(join(path, 'precious'), 'keep me');
  }

  t.test("a dead build's pool state dir removed since is not made again (its pool, a test's say, is gone)", async (t) => {
    const { dir, registry, store } = fresh();
    const gone = join(dir, 'removed-sandbox', 'state');
    deadRecord(registry, [`${store}/o`], [store], [{ t: 'uid', stateDir: gone, uid: 4_100_000_001 }]);
    await recoverStale(registry);
    t.notOk(existsSync(join(dir, 'removed-sandbox')), 'nothing is created where the state dir was');
    t.same(readdirSync(registry).filter((n) => n.endsWith('.rec')), [], 'the record is gone');
  });

  t.test('a file or symlink output installed by an unfinished hand-over is removed; one owned by someone else is left', async (t) => {
    const { registry, store } = fresh();
    writeFileSync(join(store, 'file-out'), 'x', { mode: 0o444 });
    symlinkSync('/etc/shadow', join(store, 'link-out'));
    writeFileSync(join(store, 'foreign-out'), 'not ours');
    chownSync(join(store, 'foreign-out'), 12345, 12345);
    const outputs = ['file-out', 'link-out', 'foreign-out'].map((name) => `${store}/${name}`);
    deadRecord(registry, outputs, [store], ['file-out', 'link-out', 'foreign-out'].map((relative) => ({ t: 'installing', root: store, relative })));
    const lines = (await recoverStale(registry)).join('\n');
    t.match(lines, `removed output installed by an unfinished hand-over ${store}/file-out`);
    t.match(lines, `removed output installed by an unfinished hand-over ${store}/link-out`);
    t.match(lines, `left output installed by an unfinished hand-over ${store}/foreign-out as it is (not the output the hand-over installed)`);
    t.same(readdirSync(store), ['foreign-out']);
    t.ok(statSync('/etc/shadow').isFile(), 'the symlink was removed, not followed');
  });

  t.test('what a record names but the build no longer owns is left as it is, and said', async (t) => {
    const { dir, registry, store } = fresh();
    const output = `${store}/sub/out`;
    // A staging dir replaced by a symlink to a root-only directory.
    victim(join(dir, 'victim1'));
    mkdirSync(join(store, 'sub'));
    symlinkSync(join(dir, 'victim1'), join(store, 'sub/.stockade-handover-out-aaaaaaaaaaaa'));
    // A directory on the way replaced by a symlink: what lies beyond it is not reached.
    mkdirSync(join(store, 'other'));
    victim(join(dir, 'victim2/.stockade-handover-x-bbbbbbbbbbbb'));
    symlinkSync(join(dir, 'victim2'), join(store, 'other/link'));
    // A staging-named directory that is not root's.
    victim(join(store, 'sub/.stockade-handover-out-cccccccccccc'));
    chownSync(join(store, 'sub/.stockade-handover-out-cccccccccccc'), 12345, 12345);
    // A build dir recreated since (another inode).
    victim(join(dir, 'guix-build-dead.drv-0'));
    deadRecord(registry, [output, `${store}/other/link/x`], [store], [
      { t: 'dir', parent: dir, name: 'guix-build-dead.drv-0', dev: '0:0', ino: '1' },
      { t: 'creating', root: store, relative: 'sub/.stockade-handover-out-aaaaaaaaaaaa', kind: 'staging' },
      { t: 'creating', root: store, relative: 'other/link/.stockade-handover-x-bbbbbbbbbbbb', kind: 'staging' },
      { t: 'creating', root: store, relative: 'sub/.stockade-handover-out-cccccccccccc', kind: 'staging' },
      // Not next to an output, not a staging name, outside the outputs' roots.
      { t: 'creating', root: dir, relative: 'victim3', kind: 'staging' },
      { t: 'creating', root: store, relative: 'sub', kind: 'staging' },
      { t: 'installing', root: dir, relative: 'victim3' },
    ]);
    victim(join(dir, 'victim3'));
    const lines = await recoverStale(registry);
    t.match(lines.join('\n'), /left hand-over staging .*aaaaaaaaaaaa as it is \(not a root-owned 0700 directory\)/);
    t.match(lines.join('\n'), /left hand-over staging .*other\/link\/\.stockade-handover-x-bbbbbbbbbbbb as it is \(.*component "other\/link" is a symlink/);
    t.match(lines.join('\n'), /left hand-over staging .*cccccccccccc as it is \(not a root-owned 0700 directory\)/);
    t.match(lines.join('\n'), /left hand-over staging .*victim3 as it is \(not a staging directory of the build\)/);
    t.match(lines.join('\n'), /left hand-over staging .*\/sub as it is \(not a staging directory of the build\)/);
    t.match(lines.join('\n'), /left output installed by an unfinished hand-over .*victim3 as it is \(not an output of the build\)/);
    t.match(lines.join('\n'), /left build directory .*guix-build-dead\.drv-0 as it is \(not the directory the build made\)/);
    t.notMatch(lines.join('\n'), /^removed/m, 'nothing was removed');
    for (const path of ['victim1', 'victim2/.stockade-handover-x-bbbbbbbbbbbb', 'victim3', 'guix-build-dead.drv-0']) {
      t.equal(readFileSync(join(dir, path, 'precious'), 'utf8'), 'keep me', `${path} is intact`);
    }
    t.equal(readFileSync(join(store, 'sub/.stockade-handover-out-cccccccccccc/precious'), 'utf8'), 'keep me');
    t.same(records(registry), [], 'the record, all it named handled, is gone');
  });

  t.test('a torn last line (a crash mid-append) is ignored; an oversized record is not read', async (t) => {
    const { registry, store } = fresh();
    mkdirSync(join(store, 'made'));
    deadRecord(registry, [`${store}/made/out`], [store], [{ t: 'creating', root: store, relative: 'made', kind: 'directory' }]);
    const [torn] = records(registry);
    writeFileSync(join(registry, torn), '{"t":"creating","root":"/', { flag: 'a' });
    deadRecord(registry, [`${store}/big`], [store], [{ t: 'creating', root: store, relative: 'x'.repeat(300_000), kind: 'directory' }]);
    const lines = await recoverStale(registry);
    t.match(lines.join('\n'), `removed directory made by the hand-over ${store}/made`);
    t.match(lines.join('\n'), /removed unreadable build record [0-9a-f]{16}\.rec \(\d+ bytes, over 262144\)/);
    t.same(readdirSync(store), []);
    t.same(records(registry), []);
  });

  t.test("a dead build whose leftovers cannot be removed keeps its claim and its record, until they can be", async (t) => {
    const { dir, registry, store } = fresh();
    const notADir = join(dir, 'pool-state');
    writeFileSync(notADir, '');
    deadRecord(registry, [`${store}/o`], [store], [{ t: 'uid', stateDir: notADir, uid: 4_100_000_000 }]);
    const lines: string[] = [];
    await t.rejects(admit(planOf([`${store}/o/x`], [store]), [`${store}/o/x`], { registry, onRemoved: (line) => lines.push(line) }), {
      message: new RegExp(`^output ${store}/o/x lies under output ${store}/o of build dead \\([0-9a-f]{16}, pid 1\\), dead, whose leftovers could not all be removed \\(build uid 4100000000: .*pool-state`),
    });
    t.match(lines, [/^could not clean after build [0-9a-f]{16} \(dead\), pid 1; its record stays, retried at the next admission: build uid 4100000000: /]);
    t.equal(records(registry).length, 1);
    rmSync(notADir);
    (await admit(planOf([`${store}/o/x`], [store]), [`${store}/o/x`], { registry })).release();
    t.same(records(registry), [], 'cleaned once it could be');
  });

  t.test('a registry open to others is refused', async (t) => {
    const { registry, store } = fresh();
    mkdirSync(registry, { mode: 0o700 });
    chownSync(registry, 12345, 12345);
    await t.rejects(admit(planOf([`${store}/o`], [store]), [`${store}/o`], { registry }), { message: `build registry ${registry} is owned by uid 12345, not 0` });
  });
}
