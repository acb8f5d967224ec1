// The hand-over at its limits, through real builds: deep trees (handed over or refused, and the
// build directory always removed), group- or world-writable outputs (rejected at the top,
// normalised below, as guix-daemon does), and directories made on the way to a refused output.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, NOT_ROOT_REASON, makePolicy, run, type Sandbox } from '../runtime/helpers.js';
import { outputArgs, ownLeftovers } from './helpers.js';

/** Shell for the builder: a chain of `depth` directories `d` under `where`, with a file at the bottom (relative paths: beyond PATH_MAX). */
function deepChain(where: string, depth: number): string {
  return `mkdir -p "${where}" && cd "${where}" && /usr/bin/perl -e 'for (1..${depth}) { mkdir "d" or die "mkdir: $!"; chdir "d" or die "chdir: $!" } open my $f, ">", "bottom" or die; print $f "deep\\n"; close $f' && cd /`;
}

/** A sandbox removed at the end whatever was left in it (rm -rf walks any depth). */
function sandbox(t: Test, extra = ''): Sandbox {
  const sb = makePolicy('guix-default', extra);
  t.teardown(() => void spawnSync('/bin/rm', ['-rf', sb.dir]));
  return sb;
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a build that makes a tree 20,000 directories deep leaves nothing behind', async (t) => {
    const sb = sandbox(t);
    const out = join(sb.dir, 'out');
    const r = run(sb, `${deepChain('$NIX_BUILD_TOP', 20_000)}; mkdir "$OUT"; echo ok > "$OUT/f"`, outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    t.same(readdirSync(out), ['f'], 'the output is handed over');
    t.same(ownLeftovers(sb), [], 'the build directory is removed');
  });

  t.test('an output deeper than PATH_MAX is refused, naming why; nothing installed, nothing left', async (t) => {
    const sb = sandbox(t);
    const out = join(sb.dir, 'out');
    const r = run(sb, deepChain('$OUT', 5_000), outputArgs(sb, out));
    t.equal(r.status, 1);
    t.match(r.stderr, `output hand-over refused: ${out}/d/d/d/`);
    t.match(r.stderr, /path longer than 4095 bytes \(PATH_MAX\), \d+ levels deep/);
    t.notOk(existsSync(out), 'the output is not installed');
    t.same(readdirSync(sb.dir).filter((n) => n.startsWith('.stockade-handover-')), [], 'no staging directory left');
    t.same(ownLeftovers(sb), [], 'the build directory is removed');
  });

  t.test('an output 1,500 directories deep (within PATH_MAX) is handed over whole', async (t) => {
    const sb = sandbox(t);
    const out = join(sb.dir, 'out');
    const r = run(sb, deepChain('$OUT', 1_500), outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    const bottom = join(out, ...Array(1_500).fill('d'), 'bottom');
    const st = lstatSync(bottom);
    t.same([st.uid, st.mode & 0o7777, st.mtimeMs], [0, 0o444, 1000], 'the deepest file is there, canonical');
    const middle = lstatSync(join(out, ...Array(700).fill('d')));
    t.same([middle.uid, middle.mode & 0o7777, middle.mtimeMs], [0, 0o555, 1000], 'a directory in the middle is canonical');
    t.same(ownLeftovers(sb), []);
  });

  t.test('--keep-failed with a tree deeper than PATH_MAX: not kept (it cannot be made safe), and said so', async (t) => {
    const sb = sandbox(t);
    const out = join(sb.dir, 'out');
    const r = run(sb, `${deepChain('$NIX_BUILD_TOP', 3_000)}; exit 1`, [...outputArgs(sb, out), '--keep-failed']);
    t.equal(r.status, 1);
    t.match(r.stderr, 'build directory not kept, it could not be made safe');
    t.same(ownLeftovers(sb), [], 'the build directory is removed');
  });

  t.test('a group- or world-writable output is rejected, as guix-daemon does; entries below it are normalised', async (t) => {
    for (const mode of ['0775', '0757']) {
      const sb = sandbox(t);
      const out = join(sb.dir, 'out');
      const r = run(sb, `mkdir "$OUT"; echo x > "$OUT/f"; chmod ${mode} "$OUT"`, outputArgs(sb, out));
      t.equal(r.status, 1, `mode ${mode}: the build fails`);
      t.match(r.stderr, `output hand-over refused: ${out}: group- or world-writable (mode ${mode})`, `mode ${mode}: named`);
      t.notOk(existsSync(out), `mode ${mode}: nothing installed`);
    }
    const sb = sandbox(t);
    const out = join(sb.dir, 'out');
    const r = run(sb, 'mkdir "$OUT"; mkdir -m 0777 "$OUT/d"; echo x > "$OUT/d/f"; chmod 0666 "$OUT/d/f"; echo y > "$OUT/g"; chmod 0775 "$OUT/g"', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    t.same(['d', 'd/f', 'g'].map((p) => lstatSync(join(out, p)).mode & 0o7777), [0o555, 0o444, 0o555], 'normalised to 0555/0444/0555');
  });

  t.test('a refused hand-over removes the directories it made on the way, and only those', async (t) => {
    const sb = sandbox(t);
    mkdirSync(join(sb.dir, 'existing'));
    const out = join(sb.dir, 'existing', 'new1', 'new2', 'out');
    const r = run(sb, 'mkdir "$OUT"; mkfifo "$OUT/pipe"', outputArgs(sb, out));
    t.equal(r.status, 1);
    t.match(r.stderr, `output hand-over refused: ${out}/pipe: is a FIFO`);
    t.notOk(existsSync(join(sb.dir, 'existing', 'new1')), 'new1 (made by the hand-over) is gone');
    t.ok(existsSync(join(sb.dir, 'existing')), 'the directory that was there is kept');
    const ok = run(sb, 'mkdir "$OUT"; echo x > "$OUT/f"', outputArgs(sb, out));
    t.equal(ok.status, 0, ok.stderr);
    const made = lstatSync(join(sb.dir, 'existing', 'new1'));
    t.same([made.uid, made.gid, made.mode & 0o7777], [0, 0, 0o755], 'a successful hand-over keeps them: root-owned 0755');
  });
}
