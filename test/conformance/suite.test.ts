// The conformance suite passes for every shipped policy on this machine, from real sandboxes,
// and leaves nothing behind.
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, isRoot, NOT_ROOT_REASON, ROOT } from '../helpers/child.js';

const CLI = join(ROOT, 'dist/cli/main.js');
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP')));


// With --single-threaded (as the CLI's #! line starts it) every init is forked from the suite's
// process; with --init zygote by a zygote process (the daemon's way); with --init node each is a
// fresh Node (the fallback of both). The three run at once (each with its own pool range and
// names), so the suite's three minutes of sandboxes overlap on the machine's cores.
const WAYS = [['inits forked', ['--single-threaded'], []], ['inits forked by a zygote', [], ['--init', 'zygote']], ['fresh-Node inits', [], ['--init', 'node']]] as const;

interface Run {
  dir: string;
  report: string;
  pid: number;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Starts one conformance run; resolves once it has exited (killed past `timeoutMs`). */
function conformance(nodeArgs: readonly string[], initArgs: readonly string[], timeoutMs: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-conformance-test-'));
  const first = 2_000_000_000 + randomBytes(3).readUIntBE(0, 3) * 64;
  const report = join(dir, 'report.json');
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'conformance', '--pool-range', `${first}:4`, '--json', report, ...initArgs], { env: CLEAN_ENV });
  const run: Run = { dir, report, pid: child.pid!, status: null, stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (text: string) => (run.stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (run.stderr += text));
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  return new Promise((resolve) => child.on('close', (code) => {
    clearTimeout(timer);
    run.status = code;
    resolve(run);
  }));
}

if (isRoot) ensureBuilt();
const runs = isRoot ? WAYS.map(([, nodeArgs, initArgs]) => conformance(nodeArgs, initArgs, 480_000)) : [];

WAYS.forEach(([how], i) => {
  t.test(`every check passes (or does not apply) for the shipped policies, ${how}`, { skip: !isRoot && NOT_ROOT_REASON }, async (t) => {
    const run = await runs[i];
    t.teardown(() => rmSync(run.dir, { recursive: true, force: true }));
    const failures = run.stdout.split('\n').filter((l) => l.startsWith('not ok'));
    t.same(failures, [], run.stdout.slice(-4000) + run.stderr);
    t.equal(run.status, 0, 'exit 0');
    t.match(run.stdout, /^TAP version 13\n1\.\.\d+\n/, 'TAP 13 with a plan');
    const { results, policies } = JSON.parse(readFileSync(run.report, 'utf8'));
    t.same(policies.map((p: { policy: string }) => p.policy).sort(), ['fixed-output', 'guix-default', 'host-toolchain', 'remote-exec', 'strict']);
    t.ok(results.filter((r: { status: string }) => r.status === 'pass').length > 100, 'more than 100 checks passed');
    t.match(run.stdout, /# guix-default .*\n#   node \(.*\) runs from the host toolchain bound read-only/, 'the report says node is bound in for the probe');
    // Only this run's names: the other runs go on beside it.
    const ours = `conformance-${run.pid}-`;
    t.same(readdirSync('/tmp').filter((n) => n.includes(ours)), [], 'nothing of this run left in /tmp');
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(ours), 'no mount of this run left');
  });
});
