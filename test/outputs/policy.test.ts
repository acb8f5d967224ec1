// The outputs section: guix's hand-over by default, only the owner configurable, checked
// against the pool, and shown by explain.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureBuilt } from '../helpers/child.js';

ensureBuilt();

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/main.js');

function policyFile(t: Test, body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'stk-outputs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, `stockade: 1\nname: outputs-test\nextends: ${join(ROOT, 'policies/guix-default.yaml')}\n${body}`);
  return file;
}

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

t.test('by default outputs go to root:root with guix modes and mtime 1, and explain says so', async (t) => {
  const file = policyFile(t, '');
  const plan = JSON.parse(cli('explain', '--json', file).stdout);
  t.same(plan.outputs, { owner: { uid: 0, gid: 0 }, fileMode: 0o444, executableMode: 0o555, directoryMode: 0o555, mtime: 1 });
  const text = cli('explain', file).stdout;
  t.match(text, 'outputs (handed over after the build):\n');
  t.match(text, '  owner 0:0; files 0444, executables 0555, directories 0555; mtime 1\n');
  t.match(text, 'the build fails on: a declared output the builder did not make, devices, FIFOs, sockets, entries not owned by the build user, hard links reaching outside the output');
});

t.test('outputs.owner sets the owner; nothing else of the canonical form can be changed', async (t) => {
  const owned = JSON.parse(cli('explain', '--json', policyFile(t, 'outputs: { owner: { uid: 12345, gid: 100 } }\n')).stdout);
  t.same(owned.outputs.owner, { uid: 12345, gid: 100 });
  t.equal(owned.outputs.fileMode, 0o444);
  const loose = cli('validate', policyFile(t, 'outputs:\n  owner: { uid: 0, gid: 0 }\n  file_mode: "0666"\n'));
  t.equal(loose.status, 1);
  t.match(loose.stderr, /policy\.yaml:6:3: outputs: unknown key 'file_mode'/);
});

t.test('an owner that is a UID of the build pool is refused, pointing at it', async (t) => {
  const file = policyFile(t, 'users:\n  range: { first: 30001, count: 8, gid: 30000 }\noutputs: { owner: { uid: 30004, gid: 0 } }\n');
  const r = cli('validate', file);
  t.equal(r.status, 1);
  t.match(r.stderr, /policy\.yaml:6:\d+: outputs\.owner\.uid: 30004 is a build user of the pool \(users\.range 30001-30008\)/);
});
