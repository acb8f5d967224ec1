// Per-user prefixes in access rules, no root needed: what a config may write in outputs_under,
// what {user} and {uid} become for a client, and the Plan bounds the daemon narrows to them.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decide, type Peer } from '../../src/daemon/access.js';
import { loadDaemonConfig } from '../../src/daemon/config.js';
import { PolicyError } from '../../src/policy/errors.js';
import { ROOT } from '../runtime/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'stk-access-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function configWith(lines: string[]): string {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, ['stockade-daemon: 1', 'access:', '  - policies: [guix-default]', '    users: ["*"]', ...lines, ''].join('\n'));
  return file;
}

const peer = (uid: number, account?: string): Peer => ({ pid: 1, uid, gid: uid, groups: [uid], name: account ?? String(uid), ...(account !== undefined && { account }) });
const spec = (outputs: string[]) => ({ name: 'x', builder: '/bin/sh', outputs });

t.test('outputs_under placeholders are {user} and {uid}, each a whole component; errors are positioned', async (t) => {
  const bad = configWith([
    '    inputs_under: ["/gnu/store/{user}", /gnu/store/../etc]',
    '    outputs_under: ["/gnu/store/{name}", "/gnu/store/u-{user}", "/gnu/store/{user}{uid}", "/gnu/store/{user}/./x", "/gnu/store/{user/x"]',
  ]);
  const err = t.throws(() => loadDaemonConfig(bad)) as PolicyError;
  t.same(err.message.split('\n'), [
    `${bad}:5:20: access[0].inputs_under: /gnu/store/{user}: {user} and {uid} are substituted in outputs_under only`,
    `${bad}:5:41: access[0].inputs_under: /gnu/store/../etc: '.' and '..' are not allowed in a prefix`,
    `${bad}:6:21: access[0].outputs_under: /gnu/store/{name}: unknown placeholder in '{name}' (outputs_under knows {user} and {uid})`,
    `${bad}:6:42: access[0].outputs_under: /gnu/store/u-{user}: a placeholder must be a whole path component, got 'u-{user}'`,
    `${bad}:6:65: access[0].outputs_under: /gnu/store/{user}{uid}: a placeholder must be a whole path component, got '{user}{uid}'`,
    `${bad}:6:91: access[0].outputs_under: /gnu/store/{user}/./x: '.' and '..' are not allowed in a prefix`,
    `${bad}:6:116: access[0].outputs_under: /gnu/store/{user/x: unknown placeholder in '{user' (outputs_under knows {user} and {uid})`,
  ]);
  const good = loadDaemonConfig(configWith(['    inputs_under: ["/opt/{literal}"]', '    outputs_under: ["/gnu/store/{user}", "/var/lib/stockade/outputs/{uid}/own"]']));
  t.same(good.access[0].outputsUnder, ['/gnu/store/{user}', '/var/lib/stockade/outputs/{uid}/own']);
  t.same(good.access[0].inputsUnder, ['/opt/{literal}'], 'inputs_under substitutes nothing: braces there are the path\'s own');
});

t.test('{user} and {uid} become the client\'s own; a name that is not one safe component is refused', async (t) => {
  const { access } = loadDaemonConfig(configWith(['    outputs_under:', '      - /gnu/store/{user}', '      - /srv/out/{uid}']));
  const where = access[0].where;
  t.match(decide(access, peer(1000, 'alice'), 'guix-default', spec(['/gnu/store/alice/abc-hello', '/srv/out/1000/x'])), { allowed: true, outputsUnder: ['/gnu/store/alice', '/srv/out/1000'] });
  t.same(decide(access, peer(1000, 'alice'), 'guix-default', spec(['/gnu/store/bob/abc-openssl-3.0.15', '/gnu/store/abc-openssl-3.0.15', '/gnu/store/alicex/y', '/srv/out/1001/x'])), {
    allowed: false,
    code: 'refused-spec',
    message: ['/gnu/store/bob/abc-openssl-3.0.15', '/gnu/store/abc-openssl-3.0.15', '/gnu/store/alicex/y', '/srv/out/1001/x']
      .map((o) => `refused: output ${o} is not under /gnu/store/alice, /srv/out/1000 (daemon config ${where}: outputs_under /gnu/store/{user}, /srv/out/{uid})`).join('\n'),
  });
  t.match(decide(access, peer(1000, 'alice'), 'guix-default', spec(['/gnu/store/alice/../bob/x', '/gnu/store/alice/./x'])), {
    allowed: false, message: /output \/gnu\/store\/alice\/\.\.\/bob\/x is not under .*\n.*output \/gnu\/store\/alice\/\.\/x is not under/,
  }, "'.' and '..' components are refused, not read lexically");
  for (const name of ['..', '.', 'a/b', 'a b', '-rf', '.hidden', 'x'.repeat(256), 'a\nb', '']) {
    t.same(decide(access, peer(1000, name), 'guix-default', spec([])), {
      allowed: false, code: 'denied',
      message: `user ${name} (uid 1000) may not use policy 'guix-default': user name ${JSON.stringify(name)} is not a safe path component for {user} in outputs_under /gnu/store/{user} (daemon config ${where})`,
    }, `user name ${JSON.stringify(name.slice(0, 20))} is not substituted`);
  }
  t.same(decide(access, peer(4242), 'guix-default', spec([])), {
    allowed: false, code: 'denied',
    message: `user 4242 (uid 4242) may not use policy 'guix-default': uid 4242 has no user name of its own for {user} in outputs_under /gnu/store/{user} (daemon config ${where})`,
  }, 'a uid without an account of its own has no {user}');
  t.match(decide(access, peer(1001, 'svc.build@example_org-1'), 'guix-default', spec(['/gnu/store/svc.build@example_org-1/x'])), { allowed: true });
});

t.test('the shipped config confines everyone but root to a prefix of their own', async (t) => {
  const { access } = loadDaemonConfig(join(ROOT, 'contrib/stockade-daemon.yaml'));
  const squat = spec(['/gnu/store/abc-openssl-3.0.15']);
  t.match(decide(access, peer(0, 'root'), 'guix-default', squat), { allowed: true });
  t.match(decide(access, peer(1000, 'alice'), 'guix-default', squat), { allowed: false, code: 'refused-spec', message: /output \/gnu\/store\/abc-openssl-3\.0\.15 is not under \/gnu\/store\/alice, \/var\/lib\/stockade\/outputs\/alice/ });
  t.match(decide(access, peer(1000, 'alice'), 'strict', spec(['/gnu/store/alice/abc-openssl-3.0.15'])), { allowed: true });
});
