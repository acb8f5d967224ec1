// Inputs are mounted as the supervisor opened and checked them: a symlink swapped into an
// input's path after the check changes nothing, a symlink in an input path is refused before
// anything starts, mount targets are never created through a symlink in a host directory
// already bound in, a filesystem.paths source is the object its (admin's) symlink led to when
// opened, and set-up time grows linearly with the number of inputs.
//
// The swaps happen in runBuild's onStart hook, which runs after the supervisor has opened the
// sources and before init gets its request: the timing is deterministic.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, distUrl, runChild } from '../helpers/child.js';
import { IS_ROOT, NOT_ROOT_REASON, TOOL_INPUTS, leftovers, makePolicy, removeSandbox, run, type Sandbox } from './helpers.js';

interface Swap {
  /** Renamed away, then replaced by a symlink to `to`, once the supervisor has opened the sources. */
  path: string;
  to: string;
}

/** A build name of this test run's own: cgroups are host-wide, and other runs make theirs meanwhile. */
const name = `inputs-${randomBytes(4).toString('hex')}`;

/** What a build of this test could leave behind (cgroups: only those of its own builds). */
function ownLeftovers(sb: Sandbox): string[] {
  const found = leftovers(sb).filter((l) => !l.startsWith('cgroups under'));
  for (const root of ['/sys/fs/cgroup/memory/stockade', '/sys/fs/cgroup/unified/stockade', '/sys/fs/cgroup/stockade', '/sys/fs/cgroup/pids/stockade']) {
    const groups = existsSync(root) ? readdirSync(root).filter((n) => n.startsWith(name + '-')) : [];
    if (groups.length) found.push(`cgroups under ${root}: ${groups.join(' ')}`);
  }
  return found;
}

interface BuildResult {
  outcome: string;
  exitCode: number;
  message?: string;
  output: string;
}

/** runBuild in a child process (it mounts and spawns), with `swap` done in its onStart hook. */
function buildWithSwap(sb: Sandbox, inputs: string[], script: string, swap: Swap): BuildResult {
  const child = runChild(
    `import { renameSync, symlinkSync } from 'node:fs';
import { planFromFile } from ${JSON.stringify(distUrl('plan/index.js'))};
import { readFileSync } from 'node:fs';
import { runBuild } from ${JSON.stringify(distUrl('runtime/supervisor.js'))};
const cpuTicks = (stat) => stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(11, 13).map(Number).reduce((a, b) => a + b);
const swap = ${JSON.stringify(swap)};
const plan = planFromFile(${JSON.stringify(sb.policy)}, {
  spec: { name: ${JSON.stringify(name)}, builder: '/bin/sh', args: ['-c', ${JSON.stringify(script)}], env: { PATH: '/usr/bin:/bin' }, inputs: ${JSON.stringify([...TOOL_INPUTS, ...inputs])}, outputs: [] },
});
let output = '';
const result = await runBuild(plan, {
  onOutput: (_stream, chunk) => {
    output += chunk;
  },
  onStart: () => {
    renameSync(swap.path, swap.path + '.away');
    symlinkSync(swap.to, swap.path);
  },
});
process.stdout.write(JSON.stringify({ outcome: result.outcome, exitCode: result.exitCode, message: result.message, output }));
`,
    { timeoutMs: 60_000 },
  );
  if (child.status !== 0) throw new Error(`child exited ${child.status ?? child.signal}:\n${child.stderr}`);
  return JSON.parse(child.stdout) as BuildResult;
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  ensureBuilt();

  t.test('a symlink swapped into an input path after the check: the build reads what was checked', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    // A root-only directory the build must never read: its file is readable, its directory is not.
    const host = join(sb.dir, 'host');
    mkdirSync(join(host, 'root'), { recursive: true });
    chmodSync(join(host, 'root'), 0o700);
    writeFileSync(join(host, 'root', 'secret'), 'SECRET\n', { mode: 0o644 });
    // What a build left in a directory that is both an input and an output root.
    const link = join(sb.dir, 'Y', 'link');
    mkdirSync(join(link, 'root'), { recursive: true });
    writeFileSync(join(link, 'root', 'secret'), 'DECOY\n', { mode: 0o644 });
    const input = join(link, 'root', 'secret');

    const r = buildWithSwap(sb, [input], `cat ${input}`, { path: link, to: host });
    t.equal(r.outcome, 'succeeded', r.message ?? '');
    t.equal(r.output, 'DECOY\n', 'the file opened before the swap, not the root-only one the path leads to now');
    t.same(ownLeftovers(sb), []);
  });

  t.test('a symlink swapped into a host directory already bound in: no mount target is made through it', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const outer = join(sb.dir, 'A');
    mkdirSync(join(outer, 'x'), { recursive: true });
    const elsewhere = join(sb.dir, 'elsewhere');
    mkdirSync(elsewhere);
    // The input `A` is bound first; then the target of the input `A/x/inner` (opened before the
    // swap) is made inside it, where `x` now leads to a host directory.
    const inner = join(outer, 'x', 'inner');
    mkdirSync(inner);
    const r = buildWithSwap(sb, [outer, inner], 'echo the builder ran', { path: join(outer, 'x'), to: elsewhere });
    t.notOk(existsSync(join(elsewhere, 'inner')), 'nothing made on the host through the symlink');
    t.equal(r.outcome, 'setup-failed');
    t.equal(r.output, '', 'the builder never ran');
    t.match(r.message, /mount target .*\/A\/x\/inner: component "x" is a symlink/, 'the symlinked component is named');
    t.same(ownLeftovers(sb), []);
  });

  t.test("a filesystem.paths source is the admin's: its symlinks are followed once, when the supervisor opens it", async (t) => {
    const admin = mkdtempSync(join(tmpdir(), 'stk-admin-'));
    t.teardown(() => rmSync(admin, { recursive: true, force: true }));
    for (const [dir, content] of [['real-a', 'A\n'], ['real-b', 'B\n']]) {
      mkdirSync(join(admin, dir));
      writeFileSync(join(admin, dir, 'file'), content);
    }
    symlinkSync(join(admin, 'real-a'), join(admin, 'link'));
    const sb = makePolicy('guix-default', '', 4, `  build_dir_host: ${admin}\n  paths: [{ source: ${join(admin, 'link')}, target: /opt/admin }]\n`);
    t.teardown(() => removeSandbox(sb));
    const r = buildWithSwap(sb, [], 'cat /opt/admin/file', { path: join(admin, 'link'), to: join(admin, 'real-b') });
    t.equal(r.outcome, 'succeeded', r.message ?? '');
    t.equal(r.output, 'A\n', 'the directory the symlink led to when it was opened');
    t.same(readdirSync(admin).sort(), ['link', 'link.away', 'real-a', 'real-b'], 'no build directory left');
  });

  t.test('an input through a symlink is refused before anything starts, the component named', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    mkdirSync(join(sb.dir, 'real', 'sub'), { recursive: true });
    mkdirSync(join(sb.dir, 'Y'));
    symlinkSync(join(sb.dir, 'real'), join(sb.dir, 'Y', 'link'));
    const input = join(sb.dir, 'Y', 'link', 'sub');
    const r = run(sb, 'echo the builder ran', ['--input', input]);
    t.equal(r.status, 1, 'exit 1, as a refused spec');
    t.equal(r.stdout, '', 'the builder never ran');
    t.equal(r.stderr, `stockade: refused: command line: inputs[4]: input ${input}: component "Y/link" is a symlink (to ${JSON.stringify(join(sb.dir, 'real'))}); symlinks are not followed here\n`);
    t.same(ownLeftovers(sb), []);
  });

  t.test('set-up time grows linearly with the number of inputs', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const dirs = Array.from({ length: 4000 }, (_, i) => join(sb.dir, 'in', `d${i}`));
    for (const dir of dirs) mkdirSync(dir, { recursive: true });
    // Set-up time as CPU time, which a busy machine does not stretch as wall time: the
    // supervisor's until the builder's first output, and init's (forked from the supervisor, so
    // with no Node start-up), which the builder reads from /proc (execve keeps a process's CPU
    // times). The least of three builds each, without inputs, with 1,000
    // and with 4,000.
    const ticksPerSecond = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout);
    const child = runChild(
      `import { planFromFile } from ${JSON.stringify(distUrl('plan/index.js'))};
import { runBuild } from ${JSON.stringify(distUrl('runtime/supervisor.js'))};
const cpuTicks = (stat) => stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(11, 13).map(Number).reduce((a, b) => a + b);
const dirs = ${JSON.stringify(dirs)};
const times = {};
// The first build warms the JIT up and is not counted.
const rounds = [{ count: 1000, counted: false }, ...[0, 1000, 4000, 0, 1000, 4000, 0, 1000, 4000].map((count) => ({ count, counted: true }))];
for (const { count, counted } of rounds) {
  const plan = planFromFile(${JSON.stringify(sb.policy)}, {
    spec: { name: ${JSON.stringify(name)}, builder: '/bin/sh', args: ['-c', 'read -r stat < /proc/$$/stat; echo "$stat"'], inputs: [...${JSON.stringify(TOOL_INPUTS)}, ...dirs.slice(0, count)] },
  });
  const started = process.cpuUsage();
  let supervisor;
  let stat = '';
  const result = await runBuild(plan, {
    forkInit: true,
    onOutput: (_stream, chunk) => {
      supervisor ??= process.cpuUsage(started);
      stat += chunk;
    },
  });
  if (result.outcome !== 'succeeded') throw new Error(result.message);
  // A fresh-Node init would count its Node's start-up: not comparable.
  if (result.init !== 'forked') continue;
  const ms = (supervisor.user + supervisor.system) / 1000 + (cpuTicks(stat) * 1000) / ${ticksPerSecond};
  if (counted) times[count] = Math.min(times[count] ?? Infinity, ms);
}
process.stdout.write(JSON.stringify(times));
`,
      { timeoutMs: 120_000, nodeArgs: ['--single-threaded'] },
    );
    t.equal(child.status, 0, child.stderr);
    const times = JSON.parse(child.stdout) as Record<string, number>;
    const ratio = (times[4000] - times[0]) / (times[1000] - times[0]);
    t.ok(ratio <= 5, `4,000 inputs cost ${ratio.toFixed(1)} times what 1,000 do (at most 5; CPU ms: ${JSON.stringify(times)})`);
    t.same(ownLeftovers(sb), []);
  });
}
