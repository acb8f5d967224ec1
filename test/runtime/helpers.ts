// Shared set-up for runtime tests: temporary policies with a numeric-range pool (no accounts
// needed), run through the real CLI, and checks that nothing of a build is left behind.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { processesOf } from '../../src/pool/reap.js';
import { ensureBuilt } from '../helpers/child.js';

// Every runtime, daemon and CLI test runs the CLI from dist/: never a stale one.
ensureBuilt();

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist/cli/main.js');
export const IS_ROOT = process.getuid?.() === 0;
export const NOT_ROOT_REASON = 'runtime tests need root (mounts, namespaces, build users); run them as root';
/** The host's toolchain as inputs: a shell and coreutils for the probes. */
export const TOOL_INPUTS = ['/usr', '/bin', '/lib', '/lib64'];

export interface Sandbox {
  dir: string;
  policy: string;
  firstUid: number;
  count: number;
  stateDir: string;
  /** Its own build registry, so that tests never see each other's builds. */
  registry: string;
}

// Random per test process, so concurrent test runs (other checkouts) never share a build UID:
// each run has its own pool state dir, and the pool reaps a UID's processes before use.
let nextUid = 2_000_000_000 + randomBytes(3).readUIntBE(0, 3) * 64;

/** A policy extending a shipped one, with its own range pool and state dir. */
export function makePolicy(base: string, extra = '', count = 4, filesystemExtra = ''): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'stk-rt-'));
  const firstUid = nextUid;
  nextUid += count;
  const stateDir = join(dir, 'state');
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `stockade: 1\nname: test-${base}\nextends: ${join(ROOT, 'policies', base + '.yaml')}\n` +
      `users:\n  range: { first: ${firstUid}, count: ${count}, gid: ${firstUid} }\n  state_dir: ${stateDir}\n` +
      `filesystem:\n  inputs: { under: !append [${dir}] }\n  outputs: { under: !append [${dir}] }\n` +
      (filesystemExtra || `  build_dir_host: ${dir}\n`) +
      extra,
  );
  return { dir, policy, firstUid, count, stateDir, registry: join(dir, 'builds') };
}

/** The caller's environment without the test runner's hooks (NODE_OPTIONS would load them into init). */
export const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP')));

export interface RunOutput {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Node's arguments for `stockade run`; --single-threaded as the CLI's own #! line has it (so init is forked). */
export function runArgs(sb: Sandbox, script: string, extra: string[] = []): string[] {
  return ['--single-threaded', CLI, 'run', '--policy', sb.policy, ...TOOL_INPUTS.flatMap((i) => ['--input', i]), '--env', 'PATH=/usr/bin:/bin', ...extra, '--', '/bin/sh', '-c', script];
}

export function run(sb: Sandbox, script: string, extra: string[] = [], env: NodeJS.ProcessEnv = CLEAN_ENV): RunOutput {
  const r = spawnSync(process.execPath, runArgs(sb, script, extra), { encoding: 'utf8', timeout: 60_000, env: { STOCKADE_BUILDS_DIR: sb.registry, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function runAsync(sb: Sandbox, script: string, extra: string[] = [], env: NodeJS.ProcessEnv = CLEAN_ENV): Promise<RunOutput> {
  return new Promise((done) => {
    const child = spawn(process.execPath, runArgs(sb, script, extra), { env: { STOCKADE_BUILDS_DIR: sb.registry, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

export function explain(sb: Sandbox, extra: string[] = []): any {
  const r = spawnSync(process.execPath, [CLI, 'explain', '--json', sb.policy, ...extra], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/** What this sandbox's builds could leave behind: mounts, processes, build directories, cgroups. */
export function leftovers(sb: Sandbox): string[] {
  const found: string[] = [];
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  if (mountinfo.includes(sb.dir)) found.push('a mount under ' + sb.dir);
  const procs = Array.from({ length: sb.count }, (_, i) => processesOf(sb.firstUid + i)).flat();
  if (procs.length) found.push(`processes of the pool: ${procs.join(' ')}`);
  const dirs = readdirSync(sb.dir).filter((n) => n.startsWith('guix-build-'));
  if (dirs.length) found.push(`build directories: ${dirs.join(' ')}`);
  for (const root of ['/sys/fs/cgroup/pids/stockade', '/sys/fs/cgroup/memory/stockade', '/sys/fs/cgroup/stockade', '/sys/fs/cgroup/unified/stockade']) {
    // Only this sandbox's: other builds may run on the machine meanwhile.
    const own = (name: string) => Array.from({ length: sb.count }, (_, i) => `-uid${sb.firstUid + i}`).some((tag) => name.endsWith(tag));
    const groups = existsSync(root) ? readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory() && own(e.name)).map((e) => e.name) : [];
    if (groups.length) found.push(`cgroups under ${root}: ${groups.join(' ')}`);
  }
  return found;
}

export function removeSandbox(sb: Sandbox): void {
  rmSync(sb.dir, { recursive: true, force: true });
}
