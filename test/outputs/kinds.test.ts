// Outputs as guix-daemon makes them: the builder creates each declared output itself, as a file,
// a directory or a symlink, in a directory of its own where nothing else is handed over; a
// declared output it never made fails the build with guix's message.
import t from 'tap';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { IS_ROOT, NOT_ROOT_REASON, makePolicy, removeSandbox, run } from '../runtime/helpers.js';
import { outputArgs, ownLeftovers } from './helpers.js';

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a builder that writes a single file as $out (a fixed-output download) hands over a 0444 file', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'hello.tar.gz');
    const r = run(sb, 'echo hello > "$OUT"; chmod 0666 "$OUT"', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    const st = lstatSync(out);
    t.ok(st.isFile(), 'a regular file');
    t.same([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs], [0o444, 0, 0, 1000], '0444 root:root, mtime 1');
    t.equal(readFileSync(out, 'utf8'), 'hello\n');
    t.same(ownLeftovers(sb), []);
  });

  t.test('a setuid executable file output is handed over 0555, its setuid bit stripped', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'tool');
    const r = run(sb, 'printf "#!/bin/sh\\n" > "$OUT"; chmod 4755 "$OUT"', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    t.match(r.stderr, 'without 1 setuid/setgid/sticky bits');
    t.ok(lstatSync(out).isFile(), 'a regular file');
    t.equal(statSync(out).mode & 0o7777, 0o555);
  });

  t.test('a symlink output is handed over as a symlink, never followed', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'link');
    const shadow = statSync('/etc/shadow');
    const r = run(sb, 'ln -s /etc/shadow "$OUT"', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    const st = lstatSync(out);
    t.ok(st.isSymbolicLink(), 'a symlink');
    t.equal(readlinkSync(out), '/etc/shadow');
    t.same([st.uid, st.gid, st.mtimeMs], [0, 0, 1000], 'root:root, mtime 1');
    const after = statSync('/etc/shadow');
    t.same([after.uid, after.mode, after.mtimeMs], [shadow.uid, shadow.mode, shadow.mtimeMs], '/etc/shadow untouched');
  });

  t.test('`cp -r d $out` makes $out a copy of d, as under guix', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, 'mkdir -p d/sub; echo x > d/sub/f; cp -r d "$OUT"', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    t.same(readdirSync(out), ['sub']);
    t.equal(readFileSync(join(out, 'sub/f'), 'utf8'), 'x\n');
    t.equal(statSync(out).mode & 0o7777, 0o555);
  });

  t.test("a builder that never makes its output fails with guix's message, naming it; nothing installed", async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const made = join(sb.dir, 'made');
    const forgotten = join(sb.dir, 'forgotten');
    const args = ['--output', made, '--output', forgotten, '--env', `OUT=${made}`, '--name', basename(sb.dir)];
    const r = run(sb, 'echo x > "$OUT"', args);
    t.equal(r.status, 1, r.stderr);
    t.match(r.stderr, `builder for \`${basename(sb.dir)}' failed to produce output path \`${forgotten}'`);
    t.notOk(existsSync(made), 'the output it made is not installed either');
    t.notOk(existsSync(forgotten));
    t.same(ownLeftovers(sb), []);
  });

  t.test('/bin/true as the builder fails: its output was never made', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'x');
    const r = run(sb, 'true', outputArgs(sb, out));
    t.equal(r.status, 1, r.stderr);
    t.match(r.stderr, `failed to produce output path \`${out}'`);
    t.notOk(existsSync(out));
  });

  t.test("the outputs' directory is 1775 root:<build group> in the sandbox; only declared names are handed over", async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, 'stat -c "%a %u %g" "$(dirname "$OUT")"; id -g; echo x > "$(dirname "$OUT")/extra"; mkdir "$OUT"; echo y > "$OUT/f"', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    const [mode, gid] = r.stdout.trim().split('\n');
    t.equal(mode, `1775 0 ${gid}`, 'sticky, root-owned, writable by the build group');
    t.notOk(existsSync(join(sb.dir, 'extra')), 'an undeclared name the builder made there is not handed over');
    t.equal(readFileSync(join(out, 'f'), 'utf8'), 'y\n');
    t.same(ownLeftovers(sb), []);
  });

  t.test('an input and an output under the same directory: the input stays readable and read-only', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const src = join(sb.dir, 'abc-src');
    mkdirSync(src);
    writeFileSync(join(src, 'hello.c'), 'int main() {}\n');
    const out = join(sb.dir, 'def-out');
    const r = run(sb, `cp -r ${src} "$OUT"; if echo x > ${src}/new 2>/dev/null; then echo writable; fi; rm -rf ${src} 2>/dev/null; ls ${src}`, [...outputArgs(sb, out), '--input', src]);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, 'hello.c\n', 'the input is neither writable nor removable');
    t.equal(readFileSync(join(out, 'hello.c'), 'utf8'), 'int main() {}\n');
    t.same(readdirSync(src), ['hello.c'], 'the host input is untouched');
  });

  t.test('a file output hard-linked elsewhere in the outputs directory is refused', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, 'echo x > "$OUT"; ln "$OUT" "$(dirname "$OUT")/stash"', outputArgs(sb, out));
    t.equal(r.status, 1);
    t.match(r.stderr, `output hand-over refused: ${out}: has 2 hard links, 1 of them outside the output`);
    t.notOk(existsSync(out));
  });

  t.test('two file outputs that are hard links of each other are refused', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const a = join(sb.dir, 'a');
    const b = join(sb.dir, 'b');
    const r = run(sb, 'echo x > "$A"; ln "$A" "$B"', ['--output', a, '--output', b, '--env', `A=${a}`, '--env', `B=${b}`, '--name', basename(sb.dir)]);
    t.equal(r.status, 1);
    t.match(r.stderr, 'has 2 hard links, 1 of them outside the output');
    t.notOk(existsSync(a) || existsSync(b));
  });

  t.test('a group- or world-writable directory output is refused; a file output of mode 0666 is normalised', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, 'mkdir -m 0777 "$OUT"', outputArgs(sb, out));
    t.equal(r.status, 1);
    t.match(r.stderr, `${out}: group- or world-writable (mode 0777)`);
    t.notOk(existsSync(out));
  });

  t.test('a FIFO as the output is refused, naming it', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, 'mkfifo "$OUT"', outputArgs(sb, out));
    t.equal(r.status, 1);
    t.match(r.stderr, `output hand-over refused: ${out}: is a FIFO`);
    t.notOk(existsSync(out));
  });
}
