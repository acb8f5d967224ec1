// A policy with seccomp.profile served by a real daemon: the daemon plans what loadPolicy
// loaded, profile included, so the build runs under the profile rather than being refused.
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, NOT_ROOT_REASON, TestDaemon, shSpec } from './helpers.js';

// The profile allows everything but mkdir, which fails with the errno given (EOPNOTSUPP, 95, by
// default): a refusal no build meets without it.
const profile = (errnoRet = 95) => JSON.stringify({
  defaultAction: 'SCMP_ACT_ALLOW',
  syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet }],
});
const PROBE = 'grep "^Seccomp:" /proc/self/status; mkdir /tmp/probe 2>&1; echo "mkdir $?"';

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a build under a policy with seccomp.profile runs under the profile', async (t) => {
    const d = new TestDaemon({ extra: 'seccomp:\n  profile: profile.json\n' });
    t.teardown(() => d.remove());
    // Next to the policy, where its relative seccomp.profile points.
    writeFileSync(join(d.policies, 'profile.json'), profile());
    await d.start();
    const c = await d.connect();
    t.teardown(() => c.close());
    c.build('test', shSpec('profiled', PROBE));
    const answer = await Promise.race([c.waitFor('accepted'), c.waitFor('error')]);
    t.equal(answer.type, 'accepted', `the request is accepted: ${JSON.stringify(answer)}`);
    if (answer.type !== 'accepted') return;
    const accepted = answer;
    const finished = await c.waitFor('finished');
    t.equal(finished.outcome, 'succeeded', finished.message ?? '');
    const out = c.logOf(accepted.id);
    t.match(out, /^Seccomp:\s+2\n/, 'a seccomp filter is loaded');
    t.match(out, /Operation not supported\nmkdir 1\n/, "mkdir fails with the profile's errno");
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });

  t.test('a profile edited while served is used from the next build on', async (t) => {
    const d = new TestDaemon();
    t.teardown(() => d.remove());
    // Elsewhere than the policies directory, as /usr/share/containers/seccomp.json would be.
    const profiles = join(d.sb.dir, 'profiles');
    mkdirSync(profiles);
    writeFileSync(join(profiles, 'p.json'), profile());
    writeFileSync(d.policyFile, `${readFileSync(d.policyFile, 'utf8')}seccomp:\n  profile: ${join(profiles, 'p.json')}\n`);
    await d.start();
    const c = await d.connect();
    t.teardown(() => c.close());
    const seen = new Set<string>();
    const mkdirFails = async (name: string) => {
      c.build('test', shSpec(name, PROBE));
      const accepted = await c.waitFor('accepted', (e) => !seen.has(e.id));
      seen.add(accepted.id);
      t.equal((await c.waitFor('finished', (e) => e.id === accepted.id)).outcome, 'succeeded');
      return c.logOf(accepted.id);
    };
    t.match(await mkdirFails('before'), /Operation not supported\nmkdir 1\n/);
    const from = d.log.length;
    writeFileSync(join(profiles, 'p.json'), profile(13));
    await d.waitForLog(/policies: reloaded 'test'/, from, 10_000);
    t.match(await mkdirFails('after'), /Permission denied\nmkdir 1\n/, "the edited profile's errno (EACCES)");
    t.equal(await d.stop(), 0);
    t.same(d.leftovers(), []);
  });
}
