// What a builder inherits from the process that started it, and what it can make: keyrings,
// vsock, setuid files, signal dispositions, and whether it outlives a killed `stockade run`.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { processesOf } from '../../src/pool/reap.js';
import { distUrl, ensureBuilt } from '../helpers/child.js';
import { CLEAN_ENV, IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, run, runArgs } from './helpers.js';

const KEYCTL = { add_key: 248, keyctl: 250, JOIN_SESSION_KEYRING: 1, CLEAR: 7, SESSION: -3, USER: -4, USER_SESSION: -5 };

/** Runs a Node module as `uid` (root when absent) with the compiled rawSyscall in scope as `sys`. */
function asUser(code: string, uid?: number): { status: number | null; stdout: string; stderr: string } {
  // Pool UIDs are beyond what spawn's uid option takes (int32): the child switches itself.
  const become = uid === undefined ? '' : `setresgid(${uid}, ${uid}, ${uid}); setresuid(${uid}, ${uid}, ${uid});\n`;
  const script = `import { setresgid, setresuid } from ${JSON.stringify(distUrl('ffi/libc.js'))};\nimport { rawSyscall as sys } from ${JSON.stringify(distUrl('conformance/calls.js'))};\n${become}${code}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: CLEAN_ENV, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What a build could leave behind, less cgroups: those are host-wide, and other test runs make theirs meanwhile. */
const ownLeftovers = (sb: Parameters<typeof leftovers>[0]) => leftovers(sb).filter((l) => !l.startsWith('cgroups under'));

const addKey = (description: string, keyring: number) =>
  `{ const r = sys(${KEYCTL.add_key}, 'user', ${JSON.stringify(description)}, Buffer.from('secret'), 6, ${keyring}); if (r.result < 0) throw new Error('add_key errno ' + r.errno); }`;

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  ensureBuilt();

  t.test("keyrings: no key of the supervisor's session keyring, none left in the pool user's keyrings", async (t) => {
    const sb = makePolicy('guix-default', '', 1);
    t.teardown(() => {
      asUser(`sys(${KEYCTL.keyctl}, ${KEYCTL.CLEAR}, ${KEYCTL.USER}); sys(${KEYCTL.keyctl}, ${KEYCTL.CLEAR}, ${KEYCTL.USER_SESSION});`, sb.firstUid);
      removeSandbox(sb);
    });
    const token = randomBytes(4).toString('hex');
    const supervisorKey = `stockade-test-supervisor-${token}`;
    const earlierBuildKeys = [`stockade-test-user-${token}`, `stockade-test-user-session-${token}`];
    // An earlier build of the same pool user left keys in its user and user-session keyrings.
    const planted = asUser(addKey(earlierBuildKeys[0], KEYCTL.USER) + addKey(earlierBuildKeys[1], KEYCTL.USER_SESSION), sb.firstUid);
    t.equal(planted.status, 0, planted.status === 0 ? 'an earlier build left keys' : planted.stderr);
    // The supervisor runs in a session keyring holding a key (as under systemd or the daemon).
    // keyctl(KEYCTL_SEARCH) in the session, user and user-session keyrings (/proc/keys also lists
    // unlinked keys until the kernel's key collector has run).
    const search = `for my $d (${[supervisorKey, ...earlierBuildKeys].map((k) => `"${k}"`).join(', ')}) { for my $r (-3, -4, -5) { ` +
      `my ($ring, $type, $desc) = ($r, "user", $d); print "$d found in $r\\n" if syscall(${KEYCTL.keyctl}, 10, $ring, $type, $desc, 0) >= 0 } }`;
    const script = `perl -e '${search}'; echo searched`;
    const build = asUser(
      `sys(${KEYCTL.keyctl}, ${KEYCTL.JOIN_SESSION_KEYRING}, 'stockade-test-${token}');\n${addKey(supervisorKey, KEYCTL.SESSION)}\n` +
        `const { spawnSync } = await import('node:child_process');\n` +
        `const r = spawnSync(process.execPath, ${JSON.stringify(runArgs(sb, script))}, { encoding: 'utf8' });\n` +
        `process.stdout.write(r.stdout); process.stderr.write(r.stderr); process.exitCode = r.status;`,
    );
    t.equal(build.status, 0, build.status === 0 ? 'the build ran' : build.stderr);
    t.equal(build.stdout, 'searched\n', 'the builder finds none of the keys');
    t.same(ownLeftovers(sb), []);
  });

  t.test('vsock: socket(AF_VSOCK) fails in every shipped policy unless network.vsock opts in', async (t) => {
    // The family is an int: the kernel ignores the upper 32 bits, so a filter must too.
    const probe = `perl -e 'if (socket(my $s, 40, 1, 0)) { print "vsock open\\n" } else { printf "vsock %d\\n", $!+0 }'; ` +
      `perl -e 'printf "high bits %d\\n", syscall(41, 0x100000028, 1, 0) >= 0 ? 0 : $!+0'`;
    for (const base of ['guix-default', 'fixed-output', 'strict']) {
      const sb = makePolicy(base);
      t.teardown(() => removeSandbox(sb));
      const r = run(sb, probe);
      t.equal(r.stdout, 'vsock 1\nhigh bits 1\n', `${base}: EPERM, with the upper bits set too${r.stderr ? ` (${r.stderr})` : ''}`);
      t.same(ownLeftovers(sb), [], `${base}: nothing left`);
    }
    const open = makePolicy('strict', 'network: { mode: none, vsock: true }\n');
    t.teardown(() => removeSandbox(open));
    const host = spawnSync('perl', ['-e', 'socket(my $s, 40, 1, 0) ? print "vsock open\\n" : printf "vsock %d\\n", $!+0'], { encoding: 'utf8' });
    const r = run(open, probe);
    t.equal(r.stdout.split('\n')[0] + '\n', host.stdout, `network.vsock: true answers as the host does (${host.stdout.trim()})${r.stderr ? `: ${r.stderr}` : ''}`);
  });

  t.test('strict: no setuid/setgid file can be created, by any route', async (t) => {
    const sb = makePolicy('strict');
    t.teardown(() => removeSandbox(sb));
    // Each route names the file it makes and prints the errno (0: made) and the mode it got.
    const routes = `
      use Fcntl;
      sub report { my ($route, $errno, $file) = @_; my @st = lstat($file); printf "%s %d %o\\n", $route, $errno, @st ? $st[2] & 07777 : 0; unlink $file; }
      sub sc { my ($nr, @args) = @_; return syscall($nr, @args); }  # copies: syscall wants writable strings
      my $at = -100;
      report("open", (sysopen(my $a, "f-open", O_CREAT|O_WRONLY, 06755)) ? 0 : $!+0, "f-open");
      report("open-setgid", (sysopen(my $b, "f-open-g", O_CREAT|O_WRONLY, 02755)) ? 0 : $!+0, "f-open-g");
      report("openat", (sc(257, $at, "f-openat", O_CREAT|O_WRONLY, 06755) >= 0) ? 0 : $!+0, "f-openat");
      report("creat", (sc(85, "f-creat", 06755) >= 0) ? 0 : $!+0, "f-creat");
      report("mknod", (sc(133, "f-mknod", 0100000|06755, 0) == 0) ? 0 : $!+0, "f-mknod");
      report("mknodat", (sc(259, $at, "f-mknodat", 0100000|06755, 0) == 0) ? 0 : $!+0, "f-mknodat");
      my $how = pack("QQQ", O_CREAT|O_WRONLY, 06755, 0);
      report("openat2", (sc(437, $at, "f-openat2", $how, length $how) >= 0) ? 0 : $!+0, "f-openat2");
      my $fd = sc(257, $at, ".", 020000000|0200000|O_WRONLY, 06755);  # O_TMPFILE: an unnamed file, linked in later
      printf "tmpfile %d %o\\n", $fd >= 0 ? (0, (stat(do { open(my $t, ">&=", $fd); $t }))[2] & 07777) : ($!+0, 0);
      report("plain-open", (sysopen(my $c, "f-plain", O_CREAT|O_WRONLY, 0755)) ? 0 : $!+0, "f-plain");
    `;
    const r = run(sb, `perl -e '${routes.replace(/'/g, "'\\''")}'`);
    t.equal(r.status, 0, r.status === 0 ? 'the routes were tried' : r.stderr);
    t.same(r.stdout.trim().split('\n'), [
      'open 1 0', 'open-setgid 1 0', 'openat 1 0', 'creat 1 0', 'mknod 1 0', 'mknodat 1 0', 'openat2 38 0', 'tmpfile 1 0', 'plain-open 0 755',
    ], 'EPERM for every route with S_ISUID/S_ISGID, ENOSYS for openat2, a plain file still made');
    const tools = run(sb, 'cd /tmp && echo hi > a && cp a b && mkdir -p d/e && install -m 755 a d/e/x && cat d/e/x b');
    t.equal(tools.stdout, 'hi\nhi\n', `ordinary file making still works${tools.stderr ? ` (${tools.stderr})` : ''}`);
  });

  t.test('signals: the builder starts with default dispositions and an empty mask', async (t) => {
    for (const base of ['guix-default', 'strict']) {
      const sb = makePolicy(base);
      t.teardown(() => removeSandbox(sb));
      // exec: the builder's own state, not that of a shell waiting for its child (dash blocks signals then).
      const r = run(sb, 'exec grep -E "^Sig(Blk|Ign)" /proc/self/status');
      t.equal(r.stdout, 'SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n', `${base}: nothing blocked or ignored${r.stderr ? ` (${r.stderr})` : ''}`);
      // A test suite's writer killed by SIGPIPE once its reader has what it needs (yes | head).
      const pipe = run(sb, '(yes; echo "yes ended with $?" >&2) | head -n 1');
      t.equal(pipe.stdout, 'y\n');
      t.equal(pipe.stderr, 'yes ended with 141\n', `${base}: the writer dies of SIGPIPE (128 + 13)`);
    }
  });

  t.test('kill -9 of `stockade run` ends the build: no process of its pool user remains', async (t) => {
    const sb = makePolicy('guix-default', '', 1);
    t.teardown(async () => {
      for (const pid of processesOf(sb.firstUid)) process.kill(pid, 'SIGKILL');
      removeSandbox(sb);
    });
    const cli = spawn(process.execPath, runArgs(sb, 'echo started; sleep 60 & sleep 60'), { env: CLEAN_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    cli.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve, reject) => {
      cli.stdout.on('data', (d: Buffer) => d.toString().includes('started') && resolve());
      cli.on('close', () => reject(new Error(`the build ended before it started: ${stderr}`)));
    });
    t.ok(processesOf(sb.firstUid).length > 0, 'the build runs as its pool user');
    cli.kill('SIGKILL');
    let left = processesOf(sb.firstUid);
    for (let i = 0; i < 50 && left.length; i++) {
      await sleep(100);
      left = processesOf(sb.firstUid);
    }
    t.same(left, [], 'no process of the pool user within 5 s');
  });
}
