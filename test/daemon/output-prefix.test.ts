// Per-user output prefixes through a real daemon: with outputs_under /…/users/{user}, two
// throwaway system users each build only under their own prefix, so neither can install a
// store path before the other (or root) builds it; a uid with no user name is refused.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { getpwnam } from '../../src/ffi/nss.js';
import { IS_ROOT, NOT_ROOT_REASON, OTHER_UID, TestDaemon, toolArgs } from './helpers.js';

/** useradd and userdel take /etc/passwd's lock, which other test runs may hold a moment. */
async function userCommand(args: string[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
    if (r.status === 0) return;
    if (attempt === 20 || !/lock/i.test(r.stderr)) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    await sleep(100);
  }
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('outputs_under /…/users/{user}: each user builds under its own prefix only', async (t) => {
    const tag = randomBytes(4).toString('hex');
    const [a, b] = [`stk-a-${tag}`, `stk-b-${tag}`];
    for (const name of [a, b]) {
      await userCommand(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
      t.teardown(() => userCommand(['userdel', name]));
    }
    const [uidA, uidB] = [a, b].map((name) => getpwnam(name)!.uid);

    const d = new TestDaemon();
    t.teardown(() => d.remove());
    const users = join(d.sb.dir, 'users');
    writeFileSync(d.configFile, [
      'stockade-daemon: 1',
      'access:',
      '  - policies: [test]',
      '    users: ["*"]',
      '    env: [PATH]',
      `    outputs_under: ["${users}/{user}", "${d.sb.dir}/uids/{uid}"]`,
      '',
    ].join('\n'));
    await d.start();
    const submit = (uid: number, output: string, script = `mkdir ${output}; echo built > ${output}/file`) =>
      d.client(['--policy', 'test', ...toolArgs(), '--output', output, '--', '/bin/sh', '-c', script], uid);
    const succeeded = (r: { status: number | null; stderr: string }, what: string) => {
      if (!t.equal(r.status, 0, what)) t.comment(r.stderr);
    };
    const refusal = (output: string, uid: number, name: string) =>
      `refused-spec: refused: output ${output} is not under ${users}/${name}, ${d.sb.dir}/uids/${uid} ` +
      `(daemon config ${d.configFile}:3:5: outputs_under ${users}/{user}, ${d.sb.dir}/uids/{uid})`;

    const squat = join(users, b, 'x-openssl-3.0.15');
    const claim = await submit(uidA, squat);
    t.equal(claim.status, 1, 'A cannot claim B\'s prefix');
    t.match(claim.stderr, refusal(squat, uidA, a));
    const outside = join(d.sb.dir, 'x-openssl-3.0.15');
    const shared = await submit(uidA, outside);
    t.equal(shared.status, 1, 'nor the shared prefix that the policy allows');
    t.match(shared.stderr, refusal(outside, uidA, a));
    const lookalike = join(users, `${a}x`, 'out');
    const longer = await submit(uidA, lookalike);
    t.equal(longer.status, 1, 'prefixes are matched by whole components');
    t.match(longer.stderr, refusal(lookalike, uidA, a));
    t.notMatch(d.log, /build [0-9a-f]{16}: /, 'the daemon started no build');
    t.notOk(existsSync(squat) || existsSync(outside) || existsSync(lookalike), 'nothing was installed');

    // Inside its prefix each user's build runs; A's output carries a symlink up to users/.
    const ownB = join(users, b, 'pkg');
    succeeded(await submit(uidB, ownB), 'B builds under its own prefix');
    const own = join(users, a, 'pkg');
    succeeded(await submit(uidA, own, `mkdir ${own}; echo built > ${own}/file; ln -s ../.. ${own}/up`), 'A builds under its own prefix');
    t.equal(lstatSync(join(own, 'file')).uid, 0, 'installed, root-owned');
    t.equal(readlinkSync(join(own, 'up')), '../..');
    const byUid = join(d.sb.dir, 'uids', String(uidA), 'pkg');
    succeeded(await submit(uidA, byUid), '{uid} is the client\'s uid');

    // Lexically under A's prefix, but through A's own symlink into B's: outputs never pass a symlink.
    const escape = join(own, 'up', b, 'x-openssl-3.0.15');
    const through = await submit(uidA, escape);
    t.not(through.status, 0, 'an output through a symlink out of the prefix fails');
    t.match(through.stderr, `output ${escape}: component ${own}/up is a symlink (to "../..")`);
    t.notOk(existsSync(squat), 'nothing was installed in B\'s prefix');

    const nameless = await submit(OTHER_UID, join(d.sb.dir, 'uids', String(OTHER_UID), 'pkg'));
    t.equal(nameless.status, 1);
    t.match(nameless.stderr, `denied: user ${OTHER_UID} (uid ${OTHER_UID}) may not use policy 'test': uid ${OTHER_UID} has no user name of its own for {user} in outputs_under ${users}/{user} (daemon config ${d.configFile}:3:5)`);
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });
}
