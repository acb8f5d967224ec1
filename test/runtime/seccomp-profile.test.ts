// A build under a policy built on Debian's containers seccomp profile: what the builder observes,
// next to the same probes in a sandbox without a filter.
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, run, type Sandbox } from './helpers.js';

const DEBIAN_PROFILE = '/usr/share/containers/seccomp.json';
// unshare(1) fails at the unshare syscall; perl makes add_key (248) into the process keyring (-4),
// which any user may do, and which the profile does not list.
const PROBES = 'grep "^Seccomp:" /proc/self/status; unshare -U true 2>&1; echo "unshare $?"; ' +
  `perl -e 'my ($t, $d, $p) = ("user", "probe", "v"); print syscall(248, $t, $d, $p, 1, -4) == -1 ? "add_key: $!\\n" : "add_key: ok\\n"'`;

if (!IS_ROOT) {
  t.plan(0, NOT_ROOT_REASON);
} else if (!existsSync(DEBIAN_PROFILE)) {
  t.plan(0, `${DEBIAN_PROFILE} missing: apt-get install golang-github-containers-common`);
} else {
  const sandboxes: Sandbox[] = [];
  t.teardown(() => sandboxes.forEach(removeSandbox));
  const probe = (t: Test, extra: string): string => {
    const sb = makePolicy('guix-default', extra);
    sandboxes.push(sb);
    const r = run(sb, PROBES);
    t.equal(r.status, 0, r.stderr);
    // The stockade cgroups are shared with concurrent test runs: only this sandbox's own traces count.
    t.same(leftovers(sb).filter((l) => !l.startsWith('cgroups under')), [], 'nothing left behind');
    return r.stdout;
  };

  t.test('without a filter of the policy the probes reach the kernel', async (t) => {
    const out = probe(t, '');
    t.match(out, /^Seccomp:\s+2\n/, "only the runtime's own filter (vsock closed) is loaded");
    t.match(out, /add_key: ok\n/, 'add_key works');
    t.notMatch(out, /unshare failed: Operation not permitted/);
  });

  t.test('under the profile with the policy\'s deny list on top', async (t) => {
    const out = probe(t, `seccomp:\n  profile: ${DEBIAN_PROFILE}\n  deny: [unshare]\n`);
    t.match(out, /^Seccomp:\s+2\n/, 'a seccomp filter is loaded');
    t.match(out, /unshare failed: Operation not permitted\nunshare 1\n/, 'unshare, allowed by the profile: refused by the policy (EPERM)');
    t.match(out, /add_key: Function not implemented\n/, 'add_key, not in the profile: its default ENOSYS');
  });
}
