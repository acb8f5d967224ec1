// What a builder observes from inside a guix-default sandbox, and what the host sees after.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLEAN_ENV, CLI, IS_ROOT, NOT_ROOT_REASON, explain, leftovers, makePolicy, removeSandbox, run, runAsync } from './helpers.js';

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  const sb = makePolicy('guix-default');
  t.teardown(() => removeSandbox(sb));

  t.test('the builder is PID 1 and sees only its own processes', async (t) => {
    const r = run(sb, 'echo $$; for p in /proc/[0-9]*; do echo ${p#/proc/}; done');
    t.equal(r.status, 0, r.stderr);
    const [self, ...pids] = r.stdout.trim().split('\n');
    t.equal(self, '1');
    // The shell itself (1) and nothing else: the for loop runs in the shell.
    t.same(pids, ['1']);
  });

  t.test('identity: a pool uid, never 0; no capabilities; no_new_privs', async (t) => {
    const r = run(sb, 'id -u; id -g; id -G; grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):" /proc/self/status');
    t.equal(r.status, 0, r.stderr);
    const [uid, gid, groups, ...status] = r.stdout.trim().split('\n');
    t.ok(Number(uid) >= sb.firstUid && Number(uid) < sb.firstUid + sb.count, `uid ${uid} from the pool`);
    t.equal(gid, String(sb.firstUid));
    t.equal(groups, String(sb.firstUid));
    t.same(status.map((l) => l.replace(/\s+/g, ' ')), [
      'CapInh: 0000000000000000', 'CapPrm: 0000000000000000', 'CapEff: 0000000000000000',
      'CapBnd: 0000000000000000', 'CapAmb: 0000000000000000', 'NoNewPrivs: 1',
    ]);
  });

  t.test('the mount table inside equals the Plan', async (t) => {
    const plan = explain(sb);
    const r = run(sb, 'cat /proc/self/mountinfo');
    t.equal(r.status, 0, r.stderr);
    const seen = r.stdout.trim().split('\n').map((line) => {
      const f = line.split(' ');
      const opts = new Set(f[5].split(','));
      return { target: f[4], ro: opts.has('ro'), nosuid: opts.has('nosuid'), nodev: opts.has('nodev'), noexec: opts.has('noexec') };
    });
    const inputs = ['/usr', '/bin', '/lib', '/lib64'].map((p) => ({ target: p, ro: true, nosuid: true, nodev: true, noexec: false }));
    const planned = plan.mounts
      .filter((m: any) => !(m.optional && !existsSync(m.source.path)))
      .map((m: any) => ({ target: m.target === '/tmp/guix-build-example.drv-0' ? '/tmp/guix-build-sh.drv-0' : m.target, ro: m.readonly, nosuid: m.nosuid, nodev: m.nodev, noexec: m.noexec }));
    // Compared in one order: mountinfo lists mounts by id, and bind sources get theirs when init
    // clones them, before the root is mounted.
    const byTarget = (list: typeof seen) => list.map((m) => JSON.stringify(m)).sort();
    t.same(byTarget(seen), byTarget([{ target: '/', ro: true, nosuid: true, nodev: true, noexec: false }, ...inputs, ...planned]));
  });

  t.test('host paths not declared are absent; inputs read-only; /tmp and the build dir writable', async (t) => {
    const r = run(sb, 'for p in /home /root /var /etc/shadow /boot /sys /run /srv /opt /mnt; do [ -e $p ] && echo present $p; done; ' +
      'touch /usr/x 2>&1; touch /x 2>&1; echo a > /tmp/a && echo tmp ok; echo b > b && echo cwd ok; pwd');
    t.equal(r.status, 0, r.stderr);
    t.same(r.stdout.trim().split('\n'), [
      "touch: cannot touch '/usr/x': Read-only file system",
      "touch: cannot touch '/x': Read-only file system",
      'tmp ok', 'cwd ok', '/tmp/guix-build-sh.drv-0',
    ]);
  });

  t.test('/etc holds exactly the generated files, byte for byte', async (t) => {
    const r = run(sb, 'ls /etc; for f in /etc/*; do echo "== $f"; cat $f; done; echo uid=$(id -u)');
    t.equal(r.status, 0, r.stderr);
    const uid = /uid=(\d+)/.exec(r.stdout)![1];
    const gid = sb.firstUid;
    t.equal(r.stdout, [
      'group', 'hosts', 'passwd',
      '== /etc/group', `nixbld:!:${gid}:`,
      '== /etc/hosts', '127.0.0.1 localhost', '::1 localhost',
      '== /etc/passwd', `nixbld:x:${uid}:${gid}:Nix build user:/:/noshell`, 'nobody:x:65534:65534:Nobody:/:/noshell',
      `uid=${uid}`, '',
    ].join('\n'));
  });

  t.test('/dev holds exactly the declared set', async (t) => {
    const r = run(sb, 'cd /dev && for f in * pts/*; do if [ -L $f ]; then echo "$f -> $(readlink $f)"; elif [ -c $f ]; then echo "$f char"; else echo "$f $(stat -c %F $f)"; fi; done');
    t.equal(r.status, 0, r.stderr);
    const expected = [
      'fd -> /proc/self/fd', 'full char', ...(existsSync('/dev/kvm') ? ['kvm char'] : []), 'null char', 'ptmx -> pts/ptmx', 'pts directory',
      'random char', 'shm directory', 'stderr -> /proc/self/fd/2', 'stdin -> /proc/self/fd/0', 'stdout -> /proc/self/fd/1',
      'tty char', 'urandom char', 'zero char', 'pts/ptmx char',
    ];
    t.same(r.stdout.trim().split('\n'), expected);
  });

  t.test('network: only lo, up; loopback refuses; no routes', async (t) => {
    const r = run(sb, 'ip -o link | cut -d: -f2 | tr -d " "; ip -o link | grep -c "<LOOPBACK,UP,LOWER_UP>"; ' +
      'ip route show | wc -l; ip -6 route show | grep -vc "dev lo"; ' +
      'bash -c "echo > /dev/tcp/127.0.0.1/1" 2>&1 | grep -m1 -o "Connection refused"; hostname; domainname');
    t.equal(r.status, 0, r.stderr);
    t.same(r.stdout.trim().split('\n'), ['lo', '1', '0', '0', 'Connection refused', 'localhost', '(none)']);
  });

  t.test('the environment is exactly the planned one; stdin is /dev/null; no fd above 2', async (t) => {
    const r = run(sb, 'env; echo ==; readlink /proc/$$/fd/0; ls /proc/$$/fd', ['--env', 'FOO=bar', '--cores', '3']);
    t.equal(r.status, 0, r.stderr);
    const [env, rest] = r.stdout.split('==\n');
    const dir = '/tmp/guix-build-sh.drv-0';
    const expected = {
      PATH: '/usr/bin:/bin', HOME: '/homeless-shelter', NIX_STORE: '/gnu/store', NIX_BUILD_CORES: '3', FOO: 'bar',
      NIX_BUILD_TOP: dir, TMPDIR: dir, TEMPDIR: dir, TMP: dir, TEMP: dir, PWD: dir,
    };
    const seen = Object.fromEntries(env.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    t.same(seen, expected);
    t.same(rest.trim().split('\n'), ['/dev/null', '0', '1', '2']);
  });

  t.test('two concurrent builds get different uids', async (t) => {
    const [a, b] = await Promise.all([runAsync(sb, 'id -u; sleep 1'), runAsync(sb, 'id -u; sleep 1')]);
    t.equal(a.status, 0, a.stderr);
    t.equal(b.status, 0, b.stderr);
    t.not(a.stdout.trim(), b.stdout.trim());
  });

  t.test('a builder path outside the inputs is refused (CVE-2019-5736 defence)', async (t) => {
    const outside = join(sb.dir, 'builder');
    copyFileSync('/usr/bin/true', outside);
    const r = spawnSync(process.execPath, [CLI, 'run', '--policy', sb.policy, '--input', '/usr', '--', outside], { encoding: 'utf8', env: CLEAN_ENV });
    t.equal(r.status, 1, 'refused as a spec is');
    t.equal(r.stderr, `stockade: refused: builder ${outside} resolves to ${outside}, outside the build's inputs (/usr)\n`);
  });

  t.test('nothing of the builds remains', async (t) => {
    t.same(leftovers(sb), []);
    t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(sb.dir), 'no mount of these builds on the host');
  });
}
