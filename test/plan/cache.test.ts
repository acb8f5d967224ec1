// The plan cache of `stockade run`: an unchanged policy is planned from its entry without the
// YAML parser or the validator; any change to what the load read (the policy, a base, where an
// `extends` looks) loads it again; a corrupt, oversized or symlinked entry is ignored and
// rewritten; a cache directory that is not root's 0700 is not used.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_ENTRY_BYTES, planForRun } from '../../src/plan/cache.js';
import { PolicyError } from '../../src/policy/errors.js';
import { CLEAN_ENV, IS_ROOT, NOT_ROOT_REASON, makePolicy, removeSandbox, runArgs } from '../runtime/helpers.js';

const SHIPPED = join(import.meta.dirname, '../../policies');
const SPEC = { name: 'hello', builder: '/bin/sh' };

interface Planned {
  cache: string;
  hostname: string;
  json: string;
  notices: string[];
}

async function planned(policy: string, cacheDir: string): Promise<Planned> {
  const notices: string[] = [];
  const { plan, cache } = await planForRun(policy, { spec: SPEC, cacheDir, onNotice: (m) => notices.push(m) });
  return { cache, hostname: plan.hostname, json: JSON.stringify(plan), notices };
}

/** The cache's only entry. */
function entryOf(t: Test, cacheDir: string): string {
  const names = readdirSync(cacheDir);
  t.equal(names.length, 1, 'one entry');
  return join(cacheDir, names[0]);
}

function policyFile(dir: string, name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, `stockade: 1\nname: ${name.replace(/\.yaml$/, '')}\n${body}`);
  return file;
}

if (!IS_ROOT) {
  t.comment('the plan cache is root\'s alone: its tests run as root');
} else {
  t.test('an unchanged policy is planned from its entry, as it was the first time', async (t) => {
    const dir = t.testdir();
    const cache = join(dir, 'cache');
    const first = await planned(join(SHIPPED, 'strict.yaml'), cache);
    t.equal(first.cache, 'miss');
    t.equal(statSync(cache).mode & 0o7777, 0o700, 'the directory is made 0700');
    t.equal(statSync(entryOf(t, cache)).mode & 0o7777, 0o600, 'the entry is root\'s alone');
    const second = await planned(join(SHIPPED, 'strict.yaml'), cache);
    t.equal(second.cache, 'hit');
    t.equal(second.json, first.json, 'the same Plan');
    t.strictSame([...first.notices, ...second.notices], []);
  });

  t.test('an edited policy, or an edited base, is loaded again and its entry rewritten', async (t) => {
    const dir = t.testdir();
    const cache = join(dir, 'cache');
    const base = policyFile(dir, 'base.yaml', `extends: ${join(SHIPPED, 'guix-default.yaml')}\nhostname: base\n`);
    const policy = policyFile(dir, 'policy.yaml', 'extends: base.yaml\n');
    t.match(await planned(policy, cache), { cache: 'miss', hostname: 'base' });
    t.match(await planned(policy, cache), { cache: 'hit', hostname: 'base' });
    policyFile(dir, 'policy.yaml', 'extends: base.yaml\nhostname: edited\n');
    t.match(await planned(policy, cache), { cache: 'miss', hostname: 'edited' });
    t.match(await planned(policy, cache), { cache: 'hit', hostname: 'edited' });
    policyFile(dir, 'policy.yaml', 'extends: base.yaml\n');
    writeFileSync(base, readFileSync(base, 'utf8').replace('hostname: base', 'hostname: rebased'));
    t.match(await planned(policy, cache), { cache: 'miss', hostname: 'rebased' });
    t.match(await planned(policy, cache), { cache: 'hit', hostname: 'rebased' });
  });

  t.test('a base named by `extends` that now appears where it is looked for first is loaded', async (t) => {
    const dir = t.testdir();
    const cache = join(dir, 'cache');
    // Found among the shipped policies, after the extending file's own directory.
    const policy = policyFile(dir, 'policy.yaml', 'extends: guix-default\n');
    t.match(await planned(policy, cache), { cache: 'miss', hostname: 'localhost' });
    t.match(await planned(policy, cache), { cache: 'hit', hostname: 'localhost' });
    policyFile(dir, 'guix-default.yaml', `extends: ${join(SHIPPED, 'guix-default.yaml')}\nhostname: shadowing\n`);
    t.match(await planned(policy, cache), { cache: 'miss', hostname: 'shadowing' });
  });

  t.test('a corrupt, truncated, oversized or symlinked entry is ignored and rewritten', async (t) => {
    const dir = t.testdir();
    const cache = join(dir, 'cache');
    const policy = join(SHIPPED, 'guix-default.yaml');
    const good = await planned(policy, cache);
    const entry = entryOf(t, cache);
    const text = readFileSync(entry, 'utf8');
    const damages: [string, () => void][] = [
      ['a changed byte', () => writeFileSync(entry, text.replace('"hostname":"localhost"', '"hostname":"localhosT"'))],
      ['a truncated entry', () => writeFileSync(entry, text.slice(0, text.length / 2))],
      ['not JSON', () => writeFileSync(entry, 'garbage\n')],
      ['an empty file', () => writeFileSync(entry, '')],
      ['larger than the limit', () => truncateSync(entry, MAX_ENTRY_BYTES + 1)],
      ['a symlink to a good entry', () => {
        writeFileSync(join(dir, 'elsewhere'), text);
        renameSync(entry, join(dir, 'old'));
        symlinkSync(join(dir, 'elsewhere'), entry);
      }],
    ];
    for (const [what, damage] of damages) {
      damage();
      const again = await planned(policy, cache);
      t.equal(again.cache, 'miss', `${what}: ignored`);
      t.equal(again.json, good.json, `${what}: the policy is loaded as it is`);
      t.ok(lstatSync(entry).isFile(), `${what}: rewritten as a regular file`);
      t.equal((await planned(policy, cache)).cache, 'hit', `${what}: used once rewritten`);
    }
  });

  t.test('a cache directory that is not root\'s with mode 0700 is not used, and says why', async (t) => {
    const dir = t.testdir();
    const cache = join(dir, 'cache');
    const policy = join(SHIPPED, 'guix-default.yaml');
    await planned(policy, cache);
    chmodSync(cache, 0o755);
    t.match(await planned(policy, cache), { cache: 'off', notices: [`plan cache ${cache} not used: owned by uid 0 with mode 0755, not root's with mode 0700`] });
    chmodSync(cache, 0o700);
    chownSync(cache, 1, 1);
    t.match(await planned(policy, cache), { cache: 'off', notices: [`plan cache ${cache} not used: owned by uid 1 with mode 0700, not root's with mode 0700`] });
    chownSync(cache, 0, 0);
    symlinkSync(cache, join(dir, 'link'));
    t.match(await planned(policy, join(dir, 'link')), { cache: 'off', notices: [/^plan cache \S+\/link not used: .*(ENOTDIR|ELOOP)/] });
    t.equal((await planned(policy, cache)).cache, 'hit', 'root\'s again: used');
  });

  t.test('an invalid policy is never cached; nor is one with a seccomp.profile (its importer keeps no hash)', async (t) => {
    const dir = t.testdir();
    const cache = join(dir, 'cache');
    const invalid = policyFile(dir, 'invalid.yaml', 'hostname: 42\n');
    for (let i = 0; i < 2; i++) await t.rejects(planForRun(invalid, { spec: SPEC, cacheDir: cache }), PolicyError);
    t.strictSame(readdirSync(cache), []);
    writeFileSync(join(dir, 'profile.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] }));
    const profiled = policyFile(dir, 'profiled.yaml', `extends: ${join(SHIPPED, 'guix-default.yaml')}\nseccomp: { profile: profile.json }\n`);
    t.equal((await planned(profiled, cache)).cache, 'miss');
    t.equal((await planned(profiled, cache)).cache, 'miss');
  });
}

// Through the real CLI: the first run parses and validates, the second loads neither bundle.
if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
} else {
  t.test('stockade run on a cache hit loads no YAML parser and no validator', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const cache = join(sb.dir, 'plan-cache');
    const preload = new URL('./fixtures/record-bundle-loads.mjs', import.meta.url).href;
    const runOnce = () => {
      const loads = join(sb.dir, `loads-${Date.now()}-${Math.random()}.json`);
      const r = spawnSync(process.execPath, ['--import', preload, ...runArgs(sb, 'echo built')], {
        encoding: 'utf8', timeout: 60_000, env: { ...CLEAN_ENV, STOCKADE_BUILDS_DIR: sb.registry, STOCKADE_PLAN_CACHE_DIR: cache, STOCKADE_TEST_LOADS: loads },
      });
      t.equal(r.status, 0, r.stderr);
      t.equal(r.stdout, 'built\n');
      return (JSON.parse(readFileSync(loads, 'utf8')) as string[]).map((path) => path.replace(/^.*\//, '')).sort();
    };
    t.strictSame(runOnce(), ['schema-validator.generated.cjs', 'yaml.generated.cjs'], 'the first run parses and validates the policy');
    t.strictSame(runOnce(), [], 'the second plans from the cache');
    t.equal(readdirSync(cache).length, 1, 'one entry');
  });
}
