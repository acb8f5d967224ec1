// `stockade run` killed -9 mid-build: the next `stockade run` cleans what it left (build dir,
// cgroup, its builder's processes, its record) before it starts; two concurrent runs may not
// share outputs.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLEAN_ENV, IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, run, runArgs, type Sandbox } from './helpers.js';

/** leftovers(), with only the cgroups of the given supervisors (other tests may have builds going). */
function leftoversOf(sb: Sandbox, pids: number[]): string[] {
  const found = leftovers(sb).filter((line) => !line.startsWith('cgroups under '));
  for (const root of ['/sys/fs/cgroup/pids/stockade', '/sys/fs/cgroup/stockade', '/sys/fs/cgroup/unified/stockade']) {
    const groups = existsSync(root) ? readdirSync(root).filter((name) => pids.some((pid) => name.includes(`-${pid}-`))) : [];
    if (groups.length) found.push(`cgroups under ${root}: ${groups.join(' ')}`);
  }
  return found;
}

/** A `stockade run` in the background; resolves once its builder printed `started`. */
async function started(sb: Sandbox, script: string, extra: string[] = []) {
  const child = spawn(process.execPath, runArgs(sb, script, extra), { env: { ...CLEAN_ENV, STOCKADE_BUILDS_DIR: sb.registry } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('started') && resolve());
    void exited.then((code) => reject(new Error(`stockade run exited (${code}) before its build started: ${stderr}`)));
  });
  return { child, exited, stderr: () => stderr };
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('after kill -9 of stockade run mid-build, the next run removes its build dir, cgroup, processes and record', async (t) => {
    const sb = makePolicy('guix-default', 'limits: { cgroup: { pids: 64 } }\n');
    t.teardown(() => removeSandbox(sb));
    const first = await started(sb, 'echo started; sleep 100 & sleep 100');
    const dead = first.child.pid!;
    first.child.kill('SIGKILL');
    await first.exited;
    const before = leftoversOf(sb, [dead]).join('\n');
    t.match(before, /build directories: guix-build-sh\.drv-0/, 'the dead run left its build directory');
    t.match(before, new RegExp(`cgroups under .*sh-${dead}-`), 'and its cgroup');
    t.equal(readdirSync(sb.registry).filter((n) => n.endsWith('.rec')).length, 1, 'and its record');

    const second = run(sb, 'echo second');
    t.equal(second.status, 0, second.stderr);
    t.equal(second.stdout, 'second\n');
    t.match(second.stderr, new RegExp(`removed cgroup .*sh-${dead}-\\d+-uid\\d+( and its \\d+ processes)?, of build [0-9a-f]{16} \\(sh\\), pid ${dead}`));
    t.match(second.stderr, `removed build directory ${sb.dir}/guix-build-sh.drv-0, of build`);
    t.same(leftoversOf(sb, [dead]), [], 'nothing of either run remains');
    t.same(readdirSync(sb.registry).filter((n) => n.endsWith('.rec')), [], 'no record remains');
  });

  t.test("after kill -9 of stockade run, the next run unmounts the dead build's tmpfs build dir (limits.build_dir_bytes)", async (t) => {
    const sb = makePolicy('guix-default', 'limits: { build_dir_bytes: 1M }\n');
    t.teardown(() => removeSandbox(sb));
    const first = await started(sb, 'echo started; sleep 100');
    const dead = first.child.pid!;
    first.child.kill('SIGKILL');
    await first.exited;
    const top = `${sb.dir}/guix-build-sh.drv-0/top`;
    t.match(readFileSync('/proc/self/mountinfo', 'utf8'), top, 'the dead run left its tmpfs mounted');
    const second = run(sb, 'echo second');
    t.equal(second.status, 0, second.stderr);
    t.match(second.stderr, `removed build directory tmpfs ${top}, of build`);
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), sb.dir, 'no mount remains');
    t.same(leftoversOf(sb, [dead]), []);
  });

  t.test('after kill -9 of stockade run during its hand-over, the next run leaves nothing', async (t) => {
    const sb = makePolicy('guix-default', 'limits: { cgroup: { pids: 64 } }\n');
    t.teardown(() => removeSandbox(sb));
    const parent = join(sb.dir, 'store');
    mkdirSync(parent, { mode: 0o755 });
    const out = join(parent, 'out');
    // 300 MB of real data: the copy lasts long enough to be caught in the act.
    const first = await started(sb, `echo started; mkdir ${out}; yes | head -c 314572800 > ${out}/big`, ['--output', out]);
    while (!readdirSync(parent).some((n) => n.startsWith('.stockade-handover-'))) {
      if (first.child.exitCode !== null) throw new Error(`the run ended before its hand-over was caught: ${first.stderr()}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const dead = first.child.pid!;
    first.child.kill('SIGKILL');
    await first.exited;
    t.ok(readdirSync(parent).some((n) => n.startsWith('.stockade-handover-')), 'the hand-over staging was left');

    const second = run(sb, 'echo second');
    t.equal(second.status, 0, second.stderr);
    t.same(leftoversOf(sb, [dead]), [], 'no process, cgroup, mount or build dir remains');
    t.same(readdirSync(sb.registry).filter((n) => n.endsWith('.rec')), [], 'no record remains');
    t.same(readdirSync(parent), [], 'no staging dir or output remains');
  });

  t.test('a run whose output overlaps a running one is refused, naming both; a later one is not', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const parent = join(sb.dir, 'pkgs');
    const out = join(parent, 'out');
    const first = await started(sb, 'echo started; sleep 100', ['--output', out]);
    const under = run(sb, 'echo never', ['--output', join(out, 'lib')]);
    t.equal(under.status, 1, 'refused: exit 1');
    t.equal(under.stdout, '', 'the builder never ran');
    t.match(under.stderr, new RegExp(`output ${out}/lib lies under output ${out} of build sh \\([0-9a-f]{16}, pid ${first.child.pid}\\), which is queued or running`));
    const prefix = run(sb, 'echo never', ['--output', parent]);
    t.equal(prefix.status, 1, 'refused: exit 1');
    t.match(prefix.stderr, `output ${parent} is a prefix of output ${out} of build sh`);
    first.child.kill('SIGTERM');
    t.equal(await first.exited, 143);
    const after = run(sb, `mkdir ${out}; echo built > ${out}/lib`, ['--output', out]);
    t.equal(after.status, 0, after.stderr);
    t.same(leftoversOf(sb, [first.child.pid!]), []);
  });
}
