// Root tests: a real pool of accounts, real locks across processes, real leftover processes.
import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity, PoolRef } from '../../src/plan/types.js';
import { acquire, checkPool, createPool, processesOf, reapUid, resolvePool, status } from '../../src/pool/index.js';
import { getgrnam, getgrouplist, getpwnam } from '../../src/ffi/nss.js';
import { NEEDS_ROOT, isRoot, randomHighUid, randomName, runCli, startScript } from './fixtures/helpers.js';

const ACCOUNT_FILES = ['/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow'];

function identity(pool: PoolRef, stateDir: string, supplementaryGroups: 'pool' | 'none' = 'pool'): Identity {
  return {
    pool,
    stateDir,
    passwd: { name: 'nixbld', gecos: 'Nix build user', home: '/', shell: '/noshell' },
    groupName: 'nixbld',
    supplementaryGroups,
  };
}

function range(count: number): Extract<PoolRef, { kind: 'range' }> {
  return { kind: 'range', first: randomHighUid(), count, gid: 65534 };
}

/** Waits until `count` processes run as `uid` (setpriv switches uid only after it started). */
async function waitForProcesses(uid: number, count: number): Promise<number[]> {
  const deadline = Date.now() + 2000;
  while (processesOf(uid).length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return processesOf(uid);
}

/** Runs `command` as `uid` (setpriv: Node's spawn takes only int32 uids). */
function runAs(uid: number, ...command: string[]): ChildProcess {
  return spawn('setpriv', [`--reuid=${uid}`, '--regid=65534', '--clear-groups', ...command], { stdio: 'ignore' });
}

t.test('build-user pool (root)', { skip: NEEDS_ROOT }, async (t) => {
  const before = new Map(ACCOUNT_FILES.map((f) => [f, readFileSync(f)]));
  const group = randomName();
  const prefix = `${group}er`;
  const extraUsers: string[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'stk-pool-'));
  const stateDir = join(tmp, 'state');
  const spawned: ChildProcess[] = [];
  const removeAccounts = (): void => {
    for (const name of [...extraUsers, ...[1, 2, 3, 4].map((i) => `${prefix}0${i}`)]) {
      if (getpwnam(name)) execFileSync('userdel', [name]);
    }
    if (getgrnam(group)) execFileSync('groupdel', [group]);
  };
  t.teardown(() => {
    for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    removeAccounts();
    rmSync(tmp, { recursive: true, force: true });
  });

  await t.test('create makes the group and users as the Guix manual does, once', async (t) => {
    const first = runCli(['create', '--group', group, '--count', '3']);
    t.equal(first.code, 0, first.stderr);
    t.match(first.stdout, `groupadd --system ${group}\n`);
    t.match(first.stdout, new RegExp(`useradd -g ${group} -G ${group} -d /var/empty -s /\\S+/nologin -c Guix build user 2 --system ${prefix}02\n`));
    const grp = getgrnam(group);
    t.same(grp?.members, [`${prefix}01`, `${prefix}02`, `${prefix}03`]);
    const user = getpwnam(`${prefix}03`);
    t.match(user, { gid: grp?.gid, gecos: 'Guix build user 3', home: '/var/empty', shell: /\/nologin$/ });

    const passwd = readFileSync('/etc/passwd');
    const again = runCli(['create', '--group', group, '--count', '3']);
    t.equal(again.code, 0, again.stderr);
    t.equal(again.stdout, `pool ${group}: nothing to change (3 build users present)\n`);
    t.same(readFileSync('/etc/passwd'), passwd, 'a second run changes nothing');
  });

  await t.test('create refuses accounts it did not make, changing nothing', async (t) => {
    execFileSync('useradd', ['--system', '-g', group, '-d', '/var/empty', '-s', '/usr/sbin/nologin', '-c', 'someone else', `${prefix}04`]);
    const passwd = readFileSync('/etc/passwd');
    const groups = readFileSync('/etc/group');
    const r = runCli(['create', '--group', group, '--count', '4']);
    t.equal(r.code, 1);
    t.match(r.stderr, `${prefix}04 exists and was not created by stockade pool create (gecos "someone else"); nothing changed`);
    const uid = getpwnam(`${prefix}01`)!.uid;
    t.throws(() => createPool({ group, count: 3, firstUid: uid + 100 }), { message: new RegExp(`${prefix}01 exists .*uid ${uid}, not ${uid + 100}`) });
    t.same(readFileSync('/etc/passwd'), passwd);
    t.same(readFileSync('/etc/group'), groups);
    execFileSync('userdel', [`${prefix}04`]);
  });

  await t.test('a group pool resolves through NSS with getgrouplist', async (t) => {
    const grp = getgrnam(group)!;
    const pool = resolvePool(identity({ kind: 'group', group }, stateDir));
    t.same(pool.refusals, []);
    t.equal(pool.members.length, 3);
    const user = getpwnam(`${prefix}02`)!;
    t.same(pool.members[1], { uid: user.uid, gid: grp.gid, groups: getgrouplist(user.name, user.gid), userName: user.name });
    t.ok(pool.members[1].groups.includes(grp.gid));
    const bare = resolvePool(identity({ kind: 'group', group }, stateDir, 'none'));
    t.same(bare.members[1].groups, []);
  });

  await t.test('six processes racing for three UIDs never share one', async (t) => {
    // Each holder waits until three leases have been held at once (a barrier, not a delay), so
    // every UID is used however the children's starts are spread out on a loaded machine.
    const held = join(tmp, 'held');
    mkdirSync(held);
    const child = `
      import { readdirSync, writeFileSync } from 'node:fs';
      const [dist, identity, held] = process.argv.slice(2);
      const { acquire } = await import(dist + 'pool/index.js');
      const lease = await acquire(JSON.parse(identity), { build: 'race-' + process.pid, timeoutMs: 20000, pollMs: 20 });
      const from = process.hrtime.bigint();
      writeFileSync(held + '/' + process.pid, '');
      for (let waited = 0; readdirSync(held).length < 3 && waited < 10000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      const to = process.hrtime.bigint();
      lease.release();
      process.stdout.write(JSON.stringify({ uid: lease.uid, from: String(from), to: String(to) }));
    `;
    const id = JSON.stringify(identity({ kind: 'group', group }, stateDir));
    const children = Array.from({ length: 6 }, (_, i) => startScript(tmp, `race${i}.mjs`, child, [id, held]));
    spawned.push(...children);
    const results = await Promise.all(children.map(async (c) => {
      let out = '';
      c.stdout!.on('data', (d) => (out += d));
      const [code] = await once(c, 'close'); // 'exit' may come before the last of stdout
      t.equal(code, 0, 'child succeeded');
      return JSON.parse(out) as { uid: number; from: string; to: string };
    }));
    const uids = new Set(resolvePool(identity({ kind: 'group', group }, stateDir)).members.map((m) => m.uid));
    for (const r of results) t.ok(uids.has(r.uid), `uid ${r.uid} is a pool member`);
    for (const a of results) {
      for (const b of results) {
        if (a === b || a.uid !== b.uid) continue;
        t.ok(BigInt(a.to) < BigInt(b.from) || BigInt(b.to) < BigInt(a.from), `two leases of uid ${a.uid} do not overlap`);
      }
    }
    t.equal(new Set(results.map((r) => r.uid)).size, 3, 'all three UIDs were used');
  });

  await t.test('the lock is close-on-exec, 0600, in a 0700 directory; status shows the holder', async (t) => {
    const id = identity({ kind: 'group', group }, stateDir);
    const lease = await acquire(id, { build: 'hello-2.12', timeoutMs: 0 });
    t.teardown(() => lease.release());
    t.equal(statSync(stateDir).mode & 0o777, 0o700);
    t.equal(statSync(lease.lockPath).mode & 0o777, 0o600);
    const fd = readdirSync('/proc/self/fd').find((n) => {
      try { return readlinkSync(`/proc/self/fd/${n}`) === lease.lockPath; } catch { return false; }
    });
    t.ok(fd, 'the lease holds an fd on its lock file');
    const flags = parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8);
    t.ok(flags & 0o2000000, 'O_CLOEXEC');
    const report = status(id);
    t.match(report.uids.find((u) => u.uid === lease.uid), { busy: true, holder: { build: 'hello-2.12', pid: process.pid } });
    t.equal(report.uids.filter((u) => u.busy).length, 1);
    const cli = runCli(['status', '--group', group, '--state-dir', stateDir]);
    t.equal(cli.code, 0, cli.stderr);
    t.match(cli.stdout, `pool ${group}: 1 of 3 busy\n`);
    t.match(cli.stdout, new RegExp(`uid ${lease.uid} ${lease.userName}  busy  build hello-2.12  pid ${process.pid}  since `));
    lease.release();
    t.equal(status(id).uids.filter((u) => u.busy).length, 0, 'free after release');
  });

  await t.test('a holder killed with SIGKILL releases its UID', async (t) => {
    const pool = range(1);
    const id = JSON.stringify(identity(pool, stateDir, 'none'));
    const holder = startScript(tmp, 'holder.mjs', `
      const [dist, identity] = process.argv.slice(2);
      const { acquire } = await import(dist + 'pool/index.js');
      const lease = await acquire(JSON.parse(identity), { build: 'doomed', timeoutMs: 0 });
      process.stdout.write('acquired ' + lease.uid + '\\n');
      setInterval(() => {}, 1000);
    `, [id]);
    spawned.push(holder);
    const [line] = await once(holder.stdout!, 'data');
    t.equal(String(line), `acquired ${pool.first}\n`);
    await t.rejects(acquire(JSON.parse(id), { build: 'b', timeoutMs: 0 }), { message: `pool ${pool.first}-${pool.first}: all 1 build users busy` });
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    const lease = await acquire(JSON.parse(id), { build: 'next', timeoutMs: 0 });
    t.equal(lease.uid, pool.first);
    lease.release();
  });

  await t.test('leftover processes of a UID are killed before it is handed out', async (t) => {
    const pool = range(1);
    const uid = pool.first;
    const leftovers = [runAs(uid, 'sleep', '1000'), runAs(uid, 'sh', '-c', 'sleep 1000 & sleep 1000 & wait')];
    spawned.push(...leftovers);
    t.equal((await waitForProcesses(uid, 4)).length, 4, 'sleep, sh and its two sleeps run as the UID');
    const exits = leftovers.map((c) => once(c, 'exit'));
    const lease = await acquire(identity(pool, stateDir, 'none'), { build: 'clean', timeoutMs: 0 });
    t.equal(lease.uid, uid);
    t.same(processesOf(uid), [], 'nothing runs as the UID');
    for (const [, signal] of await Promise.all(exits)) t.equal(signal, 'SIGKILL');
    lease.release();

    const again = runAs(uid, 'sleep', '1000');
    spawned.push(again);
    t.equal((await waitForProcesses(uid, 1)).length, 1);
    t.same(await reapUid(uid), { killed: 1 }, 'reapUid counts what it killed');
    t.same(await reapUid(uid), { killed: 0 });
  });

  await t.test('a process whose main thread has exited is found through its other threads, and killed', async (t) => {
    // pthread_exit in main: the leader is a zombie, the process runs on in its second thread.
    const dir = mkdtempSync(join(tmpdir(), 'stk-pool-zombie-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'main.c'), '#include <pthread.h>\n#include <unistd.h>\n' +
      'static void *sleeper(void *arg) { for (;;) pause(); return arg; }\n' +
      'int main(void) { pthread_t thread; pthread_create(&thread, 0, sleeper, 0); pthread_exit(0); }\n');
    execFileSync('gcc', ['-pthread', '-o', join(dir, 'headless'), join(dir, 'main.c')]);
    const uid = randomHighUid();
    const child = runAs(uid, join(dir, 'headless'));
    spawned.push(child);
    const headless = /\nState:\s+Z[^\n]*\n[\s\S]*\nThreads:\s+2\n/;
    const status = () => readFileSync(`/proc/${child.pid}/status`, 'utf8');
    for (let waited = 0; !headless.test(status()) && waited < 2000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    t.match(status(), headless, 'its main thread has ended, one thread runs on');
    t.same(processesOf(uid), [child.pid], 'the process is found');
    const exit = once(child, 'exit');
    t.same(await reapUid(uid), { killed: 1 });
    t.same((await exit)[1], 'SIGKILL');
    t.same(processesOf(uid), []);
  });

  await t.test('exhaustion waits, then fails with the exact message', async (t) => {
    const pool = range(2);
    const id = identity(pool, stateDir, 'none');
    const held = [await acquire(id, { build: 'a', timeoutMs: 0 }), await acquire(id, { build: 'b', timeoutMs: 0 })];
    t.same(held.map((l) => l.uid), [pool.first, pool.first + 1]);
    const label = `pool ${pool.first}-${pool.first + 1}`;
    const waits: string[] = [];
    const started = Date.now();
    await t.rejects(acquire(id, { build: 'c', timeoutMs: 300, onWait: (m) => waits.push(m) }), { message: `${label}: all 2 build users busy` });
    t.ok(Date.now() - started >= 300, 'it waited for the timeout');
    t.same(waits, [`waiting for a free build user (${label}: 2 busy)`]);

    setTimeout(() => held[1].release(), 100);
    const lease = await acquire(id, { build: 'd', timeoutMs: 5000, pollMs: 20 });
    t.equal(lease.uid, pool.first + 1, 'a waiting acquire gets the UID released meanwhile');
    lease.release();
    held[0].release();
  });

  await t.test('unsafe members are refused by name and reason', async (t) => {
    const shellUser = `${group}sh`;
    const admUser = `${group}adm`;
    extraUsers.push(shellUser, admUser);
    const longGecos = 'x'.repeat(3000); // larger than nss.ts's first buffer: exercises the ERANGE retry
    execFileSync('useradd', ['--system', '-g', group, '-G', group, '-d', '/var/empty', '-s', '/bin/bash', '-c', longGecos, shellUser]);
    execFileSync('useradd', ['--system', '-g', group, '-G', `${group},adm`, '-d', '/var/empty', '-s', '/usr/sbin/nologin', admUser]);
    t.equal(getpwnam(shellUser)?.gecos, longGecos);
    const id = identity({ kind: 'group', group }, stateDir);
    const expected = [
      `pool ${group}: ${shellUser} (uid ${getpwnam(shellUser)!.uid}) refused: login shell /bin/bash`,
      `pool ${group}: ${admUser} (uid ${getpwnam(admUser)!.uid}) refused: member of privileged group adm`,
    ];
    t.same(resolvePool(id).refusals, expected);
    await t.rejects(acquire(id, { build: 'x', timeoutMs: 0 }), { message: expected.join('\n') }, 'acquire refuses the whole pool');
    t.same(checkPool(id), expected.map((message) => ({ level: 'refused', message })));
    const cli = runCli(['check', '--group', group]);
    t.equal(cli.code, 1);
    t.equal(cli.stdout, expected.join('\n') + '\n');
    for (const name of [shellUser, admUser]) execFileSync('userdel', [name]);
    t.equal(runCli(['check', '--group', group]).code, 0, 'safe again once they are gone');
  });

  await t.test('a range including uid 0 is refused', async (t) => {
    await t.rejects(acquire(identity({ kind: 'range', first: 0, count: 3, gid: 30000 }, stateDir, 'none'), { build: 'x', timeoutMs: 0 }), {
      message: 'pool 0-2 refused: range includes uid 0',
    });
  });

  await t.test('removing the pool leaves the account files byte-identical', async (t) => {
    removeAccounts();
    for (const [file, content] of before) t.same(readFileSync(file), content, file);
  });
});

t.test('reapUid refuses uid 0 and its own uid', async (t) => {
  await t.rejects(reapUid(0), { message: 'refusing to reap uid 0' });
  if (!isRoot) await t.rejects(reapUid(process.getuid!()), { message: /refusing to reap/ });
});
