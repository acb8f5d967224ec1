// The daemon's pure parts, no root needed: the protocol's checks, the config file's positioned
// errors, and access decisions.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decide, type Peer } from '../../src/daemon/access.js';
import { loadDaemonConfig } from '../../src/daemon/config.js';
import { encodeEvent, parseRequest, ProtocolError } from '../../src/daemon/protocol.js';
import { PolicyError } from '../../src/policy/errors.js';
import { CLI, ROOT } from '../runtime/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'stk-dconf-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('requests are checked against the protocol schema', async (t) => {
  const spec = { name: 'x', builder: '/bin/sh' };
  t.same(parseRequest(JSON.stringify({ version: 1, type: 'build', policy: 'test', spec })), { version: 1, type: 'build', policy: 'test', spec });
  t.throws(() => parseRequest('{'), new ProtocolError('request is not JSON: Expected property name or \'}\' in JSON at position 1'));
  t.throws(() => parseRequest(JSON.stringify({ version: 2, type: 'cancel', id: 'x' })), { message: 'protocol version 2 is not supported (this daemon speaks 1)' });
  t.throws(() => parseRequest(JSON.stringify({ version: 1, type: 'build', policy: '../etc/x', spec })), { message: /policy: must match pattern/ });
  t.throws(() => parseRequest(JSON.stringify({ version: 1, type: 'build', policy: 'test', spec: { ...spec, uid: 0 } })), { message: /spec: must NOT have additional properties 'uid'/ });
  t.throws(() => parseRequest(JSON.stringify({ version: 1, type: 'cancel', id: 'abc' })), { message: /id: must match pattern/ });
  t.throws(() => encodeEvent({ type: 'queued', id: '0123456789abcdef', position: 0 }), { message: /daemon bug: invalid queued event: position: must be >= 1/ });
});

t.test('config errors are positioned, and unknown users are errors at load time', async (t) => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'stockade-daemon: 1\nmax_jobs: 0\naccess:\n  - policies: [test]\n    users: [no-such-user-here]\n    colour: blue\n');
  const err = t.throws(() => loadDaemonConfig(file)) as PolicyError;
  t.same(err.message.split('\n'), [`${file}:2:11: max_jobs: must be >= 1, got 0`, `${file}:6:5: access[0]: unknown key 'colour'`]);
  writeFileSync(file, 'stockade-daemon: 1\naccess:\n  - policies: [test]\n    users: [root, no-such-user-here]\n');
  t.throws(() => loadDaemonConfig(file), { message: `${file}:4:19: access[0].users: no user named 'no-such-user-here'` });
  const r = spawnSync(process.execPath, [CLI, 'daemon', '--config', file], { encoding: 'utf8', cwd: ROOT });
  t.equal(r.status, 1);
  t.equal(r.stderr, `${file}:4:19: access[0].users: no user named 'no-such-user-here'\n`);
  const shipped = loadDaemonConfig(join(ROOT, 'contrib/stockade-daemon.yaml'));
  t.equal(shipped.maxJobs, 2);
  t.match(shipped.access[0], { policies: ['fixed-output'], uids: [0] });
});

t.test('access: first matching rule decides, by uid or group; its spec limits apply', async (t) => {
  const file = join(dir, 'acl.yaml');
  writeFileSync(file, [
    'stockade-daemon: 1',
    'access:',
    '  - policies: [fixed-output]',
    '    users: [root]',
    '  - policies: [fixed-output]',
    '    groups: [4242]',
    '    env: [http_proxy]',
    '  - policies: [guix-default, strict]',
    '    users: ["*"]',
    '    env: [PATH, "LC_*"]',
    '    outputs_under: [/var/lib/stockade/outputs/shared]',
    '',
  ].join('\n'));
  const { access } = loadDaemonConfig(file);
  const peer = (uid: number, groups: number[] = [uid]): Peer => ({ pid: 1, uid, gid: groups[0], groups, name: String(uid) });
  const spec = { name: 'x', builder: '/bin/sh' };
  t.match(decide(access, peer(0), 'fixed-output', spec), { allowed: true });
  t.match(decide(access, peer(1000), 'fixed-output', spec), { allowed: false, code: 'denied', message: "user 1000 (uid 1000) may not use policy 'fixed-output'" });
  t.match(decide(access, peer(1000, [1000, 4242]), 'fixed-output', { ...spec, env: { http_proxy: 'http://127.0.0.1:3128' } }), { allowed: true });
  t.match(decide(access, peer(1000), 'strict', { ...spec, env: { PATH: '/bin', LC_ALL: 'C' } }), { allowed: true });
  t.match(decide(access, peer(1000), 'strict', { ...spec, env: { LD_PRELOAD: '/x.so' } }), { allowed: false, code: 'refused-spec', message: /environment variable LD_PRELOAD is not allowed for you \(daemon config .*acl\.yaml:8:5: PATH, LC_\*\)/ });
  t.match(decide(access, peer(1000), 'strict', { ...spec, outputs: ['/var/lib/stockade/outputs/other'] }), { allowed: false, message: /output \/var\/lib\/stockade\/outputs\/other is not under \/var\/lib\/stockade\/outputs\/shared/ });
});
