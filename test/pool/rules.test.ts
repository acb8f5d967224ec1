import t from 'tap';
import {
  MAX_ID, exhaustedMessage, isNoLoginShell, memberRefusalMessage, memberRefusals, poolLabel, rangeRefusals, waitingMessage,
  type MemberFacts,
} from '../../src/pool/rules.js';

const root = { uid: 0, gid: 0 };
const safe: MemberFacts = {
  name: 'guixbuilder03',
  uid: 998,
  gid: 997,
  shell: '/usr/sbin/nologin',
  groups: [{ gid: 997, name: 'guixbuild' }, { gid: 108, name: 'kvm' }],
};

t.test('a nologin build user in guixbuild and kvm is safe', async (t) => {
  t.same(memberRefusals(safe, root), []);
});

t.test('login shells are refused, nologin-like ones are not', async (t) => {
  for (const shell of ['/usr/sbin/nologin', '/sbin/nologin', '/bin/false', '/usr/bin/false', '/noshell', '/run/current-system/profile/sbin/nologin']) {
    t.ok(isNoLoginShell(shell), shell);
  }
  for (const shell of ['/bin/bash', '/bin/sh', '', 'nologin', '/usr/bin/zsh', '/bin/nologin-not']) {
    t.notOk(isNoLoginShell(shell), shell || '(empty)');
  }
  t.same(memberRefusals({ ...safe, shell: '/bin/bash' }, root), ['login shell /bin/bash']);
  t.same(memberRefusals({ ...safe, shell: '' }, root), ['login shell (empty, i.e. /bin/sh)']);
});

t.test('uid 0, gid 0 and group root are refused', async (t) => {
  t.same(memberRefusals({ ...safe, uid: 0 }, root), ['uid 0']);
  t.same(memberRefusals({ ...safe, gid: 0, groups: [{ gid: 0, name: 'root' }] }, root), ['primary gid 0']);
  t.same(memberRefusals({ ...safe, groups: [...safe.groups, { gid: 0 }] }, root), ['member of group root (gid 0)']);
});

t.test("Stockade's own ids are refused", async (t) => {
  t.same(memberRefusals(safe, { uid: 998, gid: 5 }), ["Stockade's own uid"]);
  t.same(memberRefusals(safe, { uid: 5, gid: 997 }), ["Stockade's own gid"]);
});

t.test('privileged groups are refused by name', async (t) => {
  for (const name of ['sudo', 'adm', 'wheel', 'docker', 'disk', 'shadow', 'lxd', 'libvirt']) {
    t.same(memberRefusals({ ...safe, groups: [...safe.groups, { gid: 27, name }] }, root), [`member of privileged group ${name}`], name);
  }
});

t.test('every reason is reported, not only the first', async (t) => {
  const reasons = memberRefusals({ ...safe, uid: 0, shell: '/bin/bash', groups: [{ gid: 27, name: 'sudo' }] }, root);
  t.same(reasons, ['uid 0', 'login shell /bin/bash', 'member of privileged group sudo']);
});

t.test('range pools', async (t) => {
  t.same(rangeRefusals({ first: 30001, count: 32, gid: 30000 }, root), []);
  t.same(rangeRefusals({ first: 0, count: 10, gid: 30000 }, root), ['range includes uid 0']);
  t.same(rangeRefusals({ first: 30001, count: 3, gid: 0 }, root), ['gid 0']);
  t.same(rangeRefusals({ first: MAX_ID - 1, count: 2, gid: 1 }, root), []);
  t.same(rangeRefusals({ first: MAX_ID - 1, count: 3, gid: 1 }, root), [`range ends past ${MAX_ID}`]);
  t.same(rangeRefusals({ first: 30001, count: 0, gid: 1 }, root), ['count 0 is not positive']);
  t.same(rangeRefusals({ first: -5, count: 3, gid: 1 }, root), ['first uid -5 is negative']);
  t.same(rangeRefusals({ first: 1.5, count: 3, gid: 1 }, root), ['first, count and gid must be integers']);
  t.same(rangeRefusals({ first: 1000, count: 10, gid: 1 }, { uid: 1005, gid: 100 }), ["range includes Stockade's own uid"]);
});

t.test('messages name the pool', async (t) => {
  const group = { kind: 'group', group: 'guixbuild' } as const;
  const range = { kind: 'range', first: 30001, count: 32, gid: 30000 } as const;
  t.equal(poolLabel(range), 'pool 30001-30032');
  t.equal(memberRefusalMessage(group, { name: 'guixbuilder03', uid: 998 }, 'login shell /bin/bash'),
    'pool guixbuild: guixbuilder03 (uid 998) refused: login shell /bin/bash');
  t.equal(exhaustedMessage(group, 10), 'pool guixbuild: all 10 build users busy');
  t.equal(waitingMessage(range, 32), 'waiting for a free build user (pool 30001-30032: 32 busy)');
});
