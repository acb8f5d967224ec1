// `stockade run --json`: one JSON result on stdout, the builder's output on stderr.
import t from 'tap';
import { existsSync, rmSync } from 'node:fs';
import { IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, run } from './helpers.js';

const FIELDS = ['cpu', 'durationMs', 'exitCode', 'init', 'keptBuildDir', 'keptOutputs', 'keptTree', 'message', 'outcome', 'peakMemoryBytes', 'status', 'termSignal', 'uid'];

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  const sb = makePolicy('guix-default', 'limits: { cgroup: { memory: 1G } }\n');
  t.teardown(() => removeSandbox(sb));

  /** Runs with --json; stdout must be exactly one JSON line. */
  const runJson = (script: string, extra: string[] = []) => {
    const r = run(sb, script, ['--json', ...extra]);
    const lines = r.stdout.split('\n');
    t.equal(lines.length, 2, `one line on stdout: ${JSON.stringify(r.stdout)}`);
    t.equal(lines[1], '', 'ending in a newline');
    return { ...r, result: JSON.parse(lines[0]) };
  };

  t.test('a build that succeeds: its output on stderr, the result on stdout', async (t) => {
    const { status, stderr, result } = runJson('echo to-stdout; echo to-stderr >&2; exit 0');
    t.equal(status, 0);
    t.equal(stderr, 'to-stdout\nto-stderr\n');
    t.same(Object.keys(result).sort(), FIELDS, 'every field, including absent ones');
    t.match(result, { outcome: 'succeeded', exitCode: 0, status: 0, termSignal: null, message: null, keptBuildDir: null, init: 'forked' });
    t.ok(result.uid >= sb.firstUid && result.uid < sb.firstUid + sb.count, `uid ${result.uid} from the pool`);
    t.ok(Number.isInteger(result.durationMs) && result.durationMs > 0, `durationMs ${result.durationMs}`);
    t.ok(Number.isInteger(result.peakMemoryBytes) && result.peakMemoryBytes > 0, `peakMemoryBytes ${result.peakMemoryBytes} from the build's memory cgroup`);
    // The build's cgroup counts CPU where the host has cpuacct (v1) or cpu.stat (v2); null otherwise.
    if (result.cpu !== null) t.match(result.cpu, { userUs: Number, systemUs: Number }, 'cpu from the build\'s cgroup');
  });

  t.test('a failing build, kept: its status, and the kept directory', async (t) => {
    const { status, result } = runJson('exit 3', ['--keep-failed']);
    t.equal(status, 3);
    t.match(result, { outcome: 'failed', exitCode: 3, status: 3, termSignal: null });
    t.match(result.keptBuildDir, /\/guix-build-sh\.drv-\d+$/);
    t.ok(existsSync(result.keptBuildDir), 'the kept directory exists');
    rmSync(result.keptBuildDir, { recursive: true, force: true });
  });

  t.test('a build that times out', async (t) => {
    const slow = makePolicy('guix-default', 'timeouts: { total: 1, max_silent: 0 }\n');
    t.teardown(() => removeSandbox(slow));
    const r = run(slow, 'sleep 30', ['--json']);
    t.equal(r.status, 124);
    t.match(JSON.parse(r.stdout), { outcome: 'timeout', exitCode: 124, status: null, termSignal: 'SIGKILL', message: 'build timed out (timeouts.total)' });
    t.same(leftovers(slow), []);
  });

  t.test('a spec refused at start (a missing input): outcome refused, exit 1', async (t) => {
    const { status, stderr, result } = runJson('echo the builder ran', ['--input', '/usr/does-not-exist']);
    t.equal(status, 1);
    t.match(result, { outcome: 'refused', exitCode: 1, status: null, message: 'refused: command line: inputs[4]: input /usr/does-not-exist: No such file or directory' });
    t.match(stderr, 'stockade: refused: command line: inputs[4]: input /usr/does-not-exist: No such file or directory', 'the message is on stderr too');
  });

  t.test('a sandbox that cannot be set up (a filesystem.paths source the host lacks): 125', async (t) => {
    const broken = makePolicy('guix-default', '', 4, '  paths: !append [{ source: /usr/does-not-exist }]\n');
    t.teardown(() => removeSandbox(broken));
    const r = run(broken, 'echo the builder ran', ['--json']);
    t.equal(r.status, 125);
    t.match(JSON.parse(r.stdout), { outcome: 'setup-failed', exitCode: 125, status: null, message: `${broken.policy}:10:19: filesystem.paths[0]: source /usr/does-not-exist: No such file or directory` });
  });

  t.test('nothing of the builds remains', async (t) => {
    t.same(leftovers(sb), []);
  });
}
