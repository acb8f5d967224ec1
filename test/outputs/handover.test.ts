// Output hand-over through real builds: what a builder leaves is handed back canonical (owner,
// modes, mtime, no setuid bits, symlinks as links, fresh inodes), and whatever may not be
// handed over fails the build with nothing installed.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chownSync, closeSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync, writeSync, type Stats } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, join } from 'node:path';
import { IS_ROOT, NOT_ROOT_REASON, makePolicy, removeSandbox, run, runAsync, type Sandbox } from '../runtime/helpers.js';
import { outputArgs, ownLeftovers } from './helpers.js';

/** Every path under `root` (itself included), with lstat. */
function walk(root: string): { path: string; st: Stats }[] {
  const st = lstatSync(root);
  const here = [{ path: root, st }];
  if (!st.isDirectory()) return here;
  return here.concat(...readdirSync(root).map((name) => walk(join(root, name))));
}

/** The output `out` where the builder makes it (its outputs directory, in the build directory), once it has written `ready` there. */
async function privateOutput(sb: Sandbox, out: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const dir = readdirSync(sb.dir).find((n) => n.startsWith('guix-build-'));
    const priv = dir && join(sb.dir, dir, 'outputs', '0', basename(out));
    if (priv && existsSync(join(priv, 'ready'))) return priv;
    await sleep(50);
  }
  throw new Error('the build never became ready');
}

/** A builder that makes its output, writes `ready` in it, waits for the test to plant something and touch `go`, then exits 0. */
const WAIT_FOR_GO = 'mkdir -p "$OUT"; touch "$OUT/ready"; while [ ! -e "$OUT/go" ]; do sleep 0.05; done; rm -f "$OUT/go" "$OUT/ready"';

/** Nothing of a refused build's outputs is installed, and no staging directory is left next to it. */
function assertNothingInstalled(t: Test, sb: Sandbox, out: string): void {
  t.notOk(existsSync(out), 'the output is not installed');
  t.same(readdirSync(sb.dir).filter((n) => n.startsWith('.stockade-handover-')), [], 'no staging directory left');
  t.same(ownLeftovers(sb), [], 'nothing of the build left');
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('setuid, setgid, sticky and write bits are gone; owner root, modes 0444/0555, mtime 1', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, [
      'mkdir "$OUT"', 'cd "$OUT"', 'echo data > plain', 'chmod 0666 plain', 'echo "#!/bin/sh" > tool', 'chmod 4755 tool', 'echo x > sgid', 'chmod 2644 sgid',
      'mkdir -p share/doc', 'chmod 3777 share', 'echo y > share/doc/both', 'chmod 6777 share/doc/both', 'ls -l >/dev/null',
    ].join('; '), outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    t.match(r.stderr, 'outputs handed over without 4 setuid/setgid/sticky bits');
    const modes: Record<string, number> = {};
    for (const { path, st } of walk(out)) {
      modes[path.slice(out.length) || '/'] = Number(st.mode) & 0o7777;
      t.equal(st.uid, 0, `${path} owned by root`);
      t.equal(st.gid, 0, `${path} group root`);
      t.equal(Number(st.mtimeMs), 1000, `${path} mtime 1`);
    }
    t.same(modes, { '/': 0o555, '/plain': 0o444, '/tool': 0o555, '/sgid': 0o444, '/share': 0o555, '/share/doc': 0o555, '/share/doc/both': 0o555 });
    t.equal(readFileSync(join(out, 'share/doc/both'), 'utf8'), 'y\n', 'contents copied');
    t.same(ownLeftovers(sb), []);
  });

  t.test('ACLs the builder set, and a default ACL of the destination, are not handed over', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const parent = join(sb.dir, 'store');
    mkdirSync(parent);
    t.equal(spawnSync('/usr/bin/setfacl', ['-d', '-m', 'u:12345:rwx', parent]).status, 0, 'the destination directory has a default ACL');
    const out = join(parent, 'out');
    const r = run(sb, 'mkdir "$OUT"; cd "$OUT"; echo x > f; setfacl -m u:12345:rw f; mkdir d; setfacl -m u:12345:rwx -d -m u:12345:rwx d; echo y > d/g', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    t.match(r.stderr, 'and the xattrs of 3 entries', 'the dropped ACLs are reported (f, d and d/g, which inherited the default ACL of d)');
    for (const { path } of walk(out)) {
      const acl = spawnSync('/usr/bin/getfacl', ['-c', '-P', '-p', path], { encoding: 'utf8' });
      t.equal(acl.status, 0);
      t.notMatch(acl.stdout, /^(user|group):[^:]+:|^mask::|^default:/m, `${path} has no ACL entries beyond its mode`);
    }
  });

  t.test('outputs.owner sets who owns handed-over outputs', async (t) => {
    const sb = makePolicy('guix-default', 'outputs: { owner: { uid: 12345, gid: 12346 } }\n');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, 'mkdir "$OUT"; echo x > "$OUT/f"; ln -s f "$OUT/l"', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    for (const { path, st } of walk(out)) t.same([st.uid, st.gid], [12345, 12346], `${path} owned by 12345:12346`);
  });

  t.test('a FIFO or a socket fails the build, naming the path; nothing is installed', async (t) => {
    const cases: [string, string, string][] = [
      ['FIFO', 'mkdir "$OUT/sub"; mkfifo "$OUT/sub/pipe"', 'sub/pipe: is a FIFO'],
      ['socket', `cd "$OUT" && ${process.execPath} -e "require('net').createServer().listen('sock', () => process.exit(0))"`, 'sock: is a socket'],
    ];
    for (const [what, script, message] of cases) {
      const sb = makePolicy('guix-default');
      t.teardown(() => removeSandbox(sb));
      const out = join(sb.dir, 'out');
      const r = run(sb, `mkdir "$OUT"; echo ok > "$OUT/fine"; ${script}`, outputArgs(sb, out));
      t.equal(r.status, 1, `${what}: the build fails`);
      t.match(r.stderr, `output hand-over refused: ${join(out, message)}: an output may hold only regular files, directories and symlinks`, `${what}: named`);
      assertNothingInstalled(t, sb, out);
    }
  });

  t.test('a device node in an output fails the build, naming the path', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const build = runAsync(sb, WAIT_FOR_GO, outputArgs(sb, out));
    const priv = await privateOutput(sb, out);
    // The build cannot make one (no CAP_MKNOD); the test plays a build that somehow did.
    t.equal(spawnSync('/usr/bin/mknod', [join(priv, 'null'), 'c', '1', '3']).status, 0);
    writeFileSync(join(priv, 'go'), '');
    const r = await build;
    t.equal(r.status, 1);
    t.match(r.stderr, `output hand-over refused: ${join(out, 'null')}: is a character device`);
    assertNothingInstalled(t, sb, out);
  });

  t.test('a hard link to a root-owned file (a copy of /etc/shadow) is refused', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const secret = join(sb.dir, 'shadow-copy');
    writeFileSync(secret, readFileSync('/etc/shadow'), { mode: 0o600 });
    const out = join(sb.dir, 'out');
    const build = runAsync(sb, WAIT_FOR_GO, outputArgs(sb, out));
    const priv = await privateOutput(sb, out);
    linkSync(secret, join(priv, 'shadow'));
    writeFileSync(join(priv, 'go'), '');
    const r = await build;
    t.equal(r.status, 1);
    t.match(r.stderr, `output hand-over refused: ${join(out, 'shadow')}: owned by uid 0, not by the build user`);
    assertNothingInstalled(t, sb, out);
    t.same([statSync(secret).uid, statSync(secret).mode & 0o7777], [0, 0o600], 'the secret is untouched');
  });

  t.test("a hard link reaching outside the output is refused, even to the build user's own file", async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const build = runAsync(sb, `mkdir "$OUT"; echo mine > "$OUT/mine"; ${WAIT_FOR_GO}`, outputArgs(sb, out));
    const priv = await privateOutput(sb, out);
    linkSync(join(priv, 'mine'), join(sb.dir, 'outside-link'));
    writeFileSync(join(priv, 'go'), '');
    const r = await build;
    t.equal(r.status, 1);
    t.match(r.stderr, `output hand-over refused: ${join(out, 'mine')}: has 2 hard links, 1 of them outside the output`);
    assertNothingInstalled(t, sb, out);
  });

  t.test('hard links inside one output are fine', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, 'mkdir "$OUT"; echo a > "$OUT/a"; ln "$OUT/a" "$OUT/b"', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    t.equal(readFileSync(join(out, 'b'), 'utf8'), 'a\n');
  });

  t.test('symlinks are kept as links and never followed', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const shadowBefore = statSync('/etc/shadow');
    const r = run(sb, 'mkdir "$OUT"; cd "$OUT"; ln -s /etc/shadow abs; ln -s ../../etc rel; ln -s nowhere dangling; ln -s / root; mkdir d; ln -s ../abs d/up', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    const links: Record<string, string> = {};
    for (const name of ['abs', 'rel', 'dangling', 'root', 'd/up']) {
      const st = lstatSync(join(out, name));
      t.ok(st.isSymbolicLink(), `${name} is a symlink`);
      t.same([st.uid, st.gid, st.mtimeMs], [0, 0, 1000], `${name}: root:root, mtime 1`);
      links[name] = readlinkSync(join(out, name));
    }
    t.same(links, { abs: '/etc/shadow', rel: '../../etc', dangling: 'nowhere', root: '/', 'd/up': '../abs' });
    const shadowAfter = statSync('/etc/shadow');
    t.same([shadowAfter.uid, shadowAfter.gid, shadowAfter.mode, shadowAfter.mtimeMs, shadowAfter.ino], [shadowBefore.uid, shadowBefore.gid, shadowBefore.mode, shadowBefore.mtimeMs, shadowBefore.ino], '/etc/shadow untouched');
  });

  t.test('outputs are fresh inodes: an fd kept on a file the build wrote reaches nothing installed', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const build = runAsync(sb, `mkdir "$OUT"; echo original > "$OUT/f"; ${WAIT_FOR_GO}`, outputArgs(sb, out));
    const priv = await privateOutput(sb, out);
    const buildInode = statSync(join(priv, 'f')).ino;
    const kept = openSync(join(priv, 'f'), 'r+');
    writeFileSync(join(priv, 'go'), '');
    const r = await build;
    t.equal(r.status, 0, r.stderr);
    t.not(statSync(join(out, 'f')).ino, buildInode, 'a different inode than the one the build wrote');
    writeSync(kept, 'tampered', 0);
    closeSync(kept);
    t.equal(readFileSync(join(out, 'f'), 'utf8'), 'original\n', 'writing through the kept fd changes nothing installed');
    t.same(ownLeftovers(sb), []);
  });

  t.test('a builder swapping a file for a symlink to a host file while it ends never changes that file', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const canary = join(sb.dir, 'canary');
    writeFileSync(canary, 'canary\n', { mode: 0o640 });
    chownSync(canary, 12345, 12346);
    const before = statSync(canary);
    const swap = `mkdir "$OUT"; cd "$OUT"; while :; do ln -sf ${canary} t1; mv -T t1 victim; echo x > t2; chmod 4777 t2; mv -T t2 victim; done & sleep 0.3; exit 0`;
    for (let i = 0; i < 5; i++) {
      const out = join(sb.dir, `out${i}`);
      const r = run(sb, swap, outputArgs(sb, out));
      t.equal(r.status, 0, `run ${i}: ${r.stderr}`);
      const victim = lstatSync(join(out, 'victim'));
      if (victim.isSymbolicLink()) t.equal(readlinkSync(join(out, 'victim')), canary, `run ${i}: a symlink, copied as one`);
      else t.equal(Number(victim.mode) & 0o7777, 0o555, `run ${i}: a file, canonical (executable: it was 4777)`);
      const after = statSync(canary);
      t.same([after.uid, after.gid, after.mode, after.mtimeMs, after.size], [before.uid, before.gid, before.mode, before.mtimeMs, before.size], `run ${i}: the canary is unchanged`);
    }
    t.equal(readFileSync(canary, 'utf8'), 'canary\n');
    t.same(ownLeftovers(sb), []);
  });

  t.test('a failed build installs nothing and leaves nothing', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, 'mkdir "$OUT"; echo partial > "$OUT/f"; exit 3', outputArgs(sb, out));
    t.equal(r.status, 3);
    assertNothingInstalled(t, sb, out);
  });

  t.test('--keep-failed leaves the tree made safe: root-owned, no setuid/setgid/sticky, nothing writable by others, no FIFOs', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const r = run(sb, [
      'mkdir "$OUT"', 'cd "$OUT"', 'echo x > suid', 'chmod 6777 suid', 'mkdir open', 'chmod 1777 open', 'mkfifo open/pipe', 'ln -s /etc/shadow link',
      'echo y > "$NIX_BUILD_TOP/log"', 'chmod 4766 "$NIX_BUILD_TOP/log"', 'exit 1',
    ].join('; '), [...outputArgs(sb, out), '--keep-failed']);
    t.equal(r.status, 1);
    const kept = /keeping build directory '([^']+)'/.exec(r.stderr)?.[1];
    t.ok(kept, r.stderr);
    t.notOk(existsSync(out), 'the output is not installed');
    const entries = walk(kept!);
    t.ok(entries.some((e) => e.path.endsWith('/top/log')) && entries.some((e) => e.path.endsWith('/outputs/0/out/suid')), 'build dir and partial output kept');
    for (const { path, st } of entries) {
      t.same([st.uid, st.gid], [0, 0], `${path} owned by root`);
      if (!st.isSymbolicLink()) t.equal(Number(st.mode) & 0o7022, 0, `${path}: no setuid/setgid/sticky, not group/world-writable`);
      t.ok(st.isFile() || st.isDirectory() || st.isSymbolicLink(), `${path} is no special file`);
    }
    t.equal(readlinkSync(join(kept!, 'outputs/0/out/link')), '/etc/shadow');
    t.same(statSync('/etc/shadow').uid, 0, '/etc/shadow not followed');
  });
}
