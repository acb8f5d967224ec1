// Where an output is put, through real builds: its destination is resolved beneath its
// outputs.under root without following any symlink, at start and again at hand-over (a symlink
// planted on the way while the build runs, as another build's output can hold, is refused);
// and an output's own name may be as long as the filesystem allows.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, join } from 'node:path';
import { IS_ROOT, NOT_ROOT_REASON, makePolicy, removeSandbox, run, runAsync, type Sandbox } from '../runtime/helpers.js';
import { outputArgs, ownLeftovers } from './helpers.js';

/** The output `out` where the builder makes it (outputs directory `n`, in the build directory), once it has written `ready` there. */
async function privateOutput(sb: Sandbox, out: string, n = 0): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const dir = readdirSync(sb.dir).find((name) => name.startsWith('guix-build-'));
    const priv = dir && join(sb.dir, dir, 'outputs', String(n), basename(out));
    if (priv && existsSync(join(priv, 'ready'))) return priv;
    await sleep(50);
  }
  throw new Error('the build never became ready');
}

/** Makes the output, writes `pwned` into it, says `ready`, and waits for the test to touch `go`. */
const WRITE_THEN_WAIT = 'mkdir "$OUT"; echo pwned > "$OUT/pwned"; touch "$OUT/ready"; while [ ! -e "$OUT/go" ]; do sleep 0.05; done; rm -f "$OUT/go" "$OUT/ready"';

function noStaging(t: Test, dir: string): void {
  t.same(readdirSync(dir).filter((n) => n.startsWith('.stockade-handover-')), [], `no staging directory left in ${dir}`);
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a symlink planted in the middle of an output path while the build runs is refused at hand-over, naming it', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    // A directory the test owns stands for '/': what the hand-over would write there is seen.
    const fakeRoot = join(sb.dir, 'fake-root');
    mkdirSync(join(fakeRoot, 'etc'), { recursive: true });
    const out = join(sb.dir, 'X', 'link', 'etc', 'pwned');
    const build = runAsync(sb, WRITE_THEN_WAIT, outputArgs(sb, out));
    const priv = await privateOutput(sb, out);
    t.notOk(existsSync(join(sb.dir, 'X')), 'X did not exist when the build started');
    mkdirSync(join(sb.dir, 'X'));
    symlinkSync(fakeRoot, join(sb.dir, 'X', 'link'));
    writeFileSync(join(priv, 'go'), '');
    const r = await build;
    t.equal(r.status, 1, 'the build fails');
    t.match(r.stderr, `output hand-over refused: output ${out}: component ${join(sb.dir, 'X', 'link')} is a symlink (to "${fakeRoot}")`, r.stderr);
    t.same(readdirSync(join(fakeRoot, 'etc')), [], 'nothing written through the link');
    noStaging(t, join(sb.dir, 'X'));
    t.same(ownLeftovers(sb), [], 'nothing of the build left');
  });

  t.test("the same with the link to '/' itself: nothing appears in /etc", async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const name = `stockade-test-pwned-${randomBytes(8).toString('hex')}`;
    // Only if the hand-over wrote there, which is what the test proves it does not.
    t.teardown(() => rmSync(join('/etc', name), { recursive: true, force: true }));
    const out = join(sb.dir, 'X', 'link', 'etc', name);
    const build = runAsync(sb, WRITE_THEN_WAIT, outputArgs(sb, out));
    const priv = await privateOutput(sb, out);
    mkdirSync(join(sb.dir, 'X'));
    symlinkSync('/', join(sb.dir, 'X', 'link'));
    const etcBefore = readdirSync('/etc').filter((n) => n.startsWith('.stockade-handover-'));
    writeFileSync(join(priv, 'go'), '');
    const r = await build;
    t.equal(r.status, 1, 'the build fails');
    t.match(r.stderr, `component ${join(sb.dir, 'X', 'link')} is a symlink (to "/")`, r.stderr);
    t.notOk(existsSync(join('/etc', name)), `no /etc/${name}`);
    t.same(readdirSync('/etc').filter((n) => n.startsWith('.stockade-handover-')), etcBefore, 'no staging directory made in /etc');
    t.same(ownLeftovers(sb), [], 'nothing of the build left');
  });

  t.test('a symlink already on the way when the build starts is refused before the builder runs', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const fakeRoot = join(sb.dir, 'fake-root');
    mkdirSync(fakeRoot);
    mkdirSync(join(sb.dir, 'X'));
    symlinkSync(fakeRoot, join(sb.dir, 'X', 'link'));
    const out = join(sb.dir, 'X', 'link', 'out');
    const r = run(sb, 'echo the builder ran', outputArgs(sb, out));
    t.equal(r.status, 1, 'refused: exit 1, as a refused spec');
    t.equal(r.stdout, '', 'the builder never ran');
    t.match(r.stderr, `output ${out}: component ${join(sb.dir, 'X', 'link')} is a symlink (to "${fakeRoot}")`);
    t.same(readdirSync(fakeRoot), [], 'nothing made through the link');
    t.same(ownLeftovers(sb), []);
  });

  t.test('an output that exists already, even as a dangling symlink, is refused before the builder runs', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const dir = join(sb.dir, 'there');
    mkdirSync(dir);
    const link = join(sb.dir, 'dangling');
    symlinkSync(join(sb.dir, 'nowhere'), link);
    for (const out of [dir, link]) {
      const r = run(sb, 'echo the builder ran', outputArgs(sb, out));
      t.equal(r.status, 1, `${out}: refused: exit 1, as a refused spec`);
      t.equal(r.stdout, '', `${out}: the builder never ran`);
      t.match(r.stderr, `output ${out} already exists`);
    }
    t.notOk(existsSync(join(sb.dir, 'nowhere')), 'nothing made through the dangling link');
    t.same(ownLeftovers(sb), []);
  });

  t.test('an outputs.under root that does not exist is not made: the build is refused, naming it', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const missing = join(sb.dir, 'missing-root');
    const policy = readFileSync(sb.policy, 'utf8');
    writeFileSync(sb.policy, policy.replace(`outputs: { under: !append [${sb.dir}] }`, `outputs: { under: !append [${sb.dir}, ${missing}] }`));
    const out = join(missing, 'out');
    const r = run(sb, 'echo the builder ran', outputArgs(sb, out));
    t.equal(r.status, 1, 'refused: exit 1, as a refused spec');
    t.equal(r.stdout, '', 'the builder never ran');
    t.match(r.stderr, `output ${out}: its outputs.under root ${missing} cannot be opened`);
    t.notOk(existsSync(missing), 'the root is not made');
    t.same(ownLeftovers(sb), []);
  });

  t.test('a refusal of one output installs none and removes the directories made for the others', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const fakeRoot = join(sb.dir, 'fake-root');
    mkdirSync(fakeRoot);
    const first = join(sb.dir, 'new1', 'new2', 'first');
    const second = join(sb.dir, 'X', 'link', 'second');
    const args = ['--output', first, '--output', second, '--name', basename(sb.dir), '--env', `OUT=${second}`, '--env', `FIRST=${first}`];
    const build = runAsync(sb, `mkdir "$FIRST"; echo one > "$FIRST/f"; ${WRITE_THEN_WAIT}`, args);
    const priv = await privateOutput(sb, second, 1);
    mkdirSync(join(sb.dir, 'X'));
    symlinkSync(fakeRoot, join(sb.dir, 'X', 'link'));
    writeFileSync(join(priv, 'go'), '');
    const r = await build;
    t.equal(r.status, 1, 'the build fails');
    t.match(r.stderr, `component ${join(sb.dir, 'X', 'link')} is a symlink`);
    t.notOk(existsSync(join(sb.dir, 'new1')), 'the directories made on the way to the first output are removed');
    t.same(readdirSync(fakeRoot), [], 'nothing written through the link');
    noStaging(t, sb.dir);
    t.same(ownLeftovers(sb), []);
  });

  t.test('an output whose name is 255 bytes (NAME_MAX) is handed over', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const name = 'n'.repeat(252) + 'é' + 'x'; // multi-byte: 255 bytes, 254 characters
    t.equal(Buffer.byteLength(name), 255);
    const out = join(sb.dir, name);
    const r = run(sb, 'mkdir "$OUT"; echo long > "$OUT/f"', outputArgs(sb, out));
    t.equal(r.status, 0, r.stderr);
    t.equal(readFileSync(join(out, 'f'), 'utf8'), 'long\n');
    noStaging(t, sb.dir);
    t.same(ownLeftovers(sb), []);
  });
}
