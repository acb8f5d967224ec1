// Shared by tests: effects that change a process (namespaces, ids, filters, Landlock)
// run in a throwaway `node` child that imports the compiled dist/, never in the test runner.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DIST = join(ROOT, 'dist');
export const isRoot = process.getuid?.() === 0;
export const NOT_ROOT_REASON = 'needs root (run the tests as root to check this)';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Runs `npm run build` when dist/ is missing or older than any source, so a test run by hand
 * (`npx tap test/runtime/...`) never tests a stale build silently.
 */
export function ensureBuilt(): void {
  let built = 0;
  try {
    built = newestMtime(DIST);
  } catch {
    built = 0;
  }
  if (built < Math.max(newestMtime(join(ROOT, 'src')), newestMtime(join(ROOT, 'schemas')))) {
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  }
}

/** A dist/ module's URL, for `import` lines of child scripts. */
export function distUrl(module: string): string {
  return pathToFileURL(join(DIST, module)).href;
}

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs an ES module script in a fresh `node`, in a temporary directory removed afterwards. */
export interface ChildOptions {
  env?: Record<string, string>;
  /** Extra files written next to the script (the child's cwd). */
  files?: Record<string, string>;
  timeoutMs?: number;
  /** Options of node itself, before the script (--single-threaded, say). */
  nodeArgs?: string[];
}

/** The test's environment without tap's NODE_OPTIONS: its --import hooks run on a thread of their own. */
function childEnv(): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _tapHooks, ...env } = process.env;
  return env;
}

export function runChild(script: string, options: ChildOptions = {}): ChildResult {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-ffi-test-'));
  try {
    const file = join(dir, 'child.mjs');
    writeFileSync(file, script);
    for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), content);
    const result = spawnSync(process.execPath, [...(options.nodeArgs ?? []), file], {
      cwd: dir,
      encoding: 'utf8',
      timeout: options.timeoutMs ?? 20000,
      env: { ...childEnv(), ...options.env, STOCKADE_TEST_DIR: dir },
    });
    return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a child script that prints one JSON document on stdout and returns it parsed. */
export function runChildJson<T>(script: string, options: ChildOptions = {}): T {
  const result = runChild(script, options);
  if (result.status !== 0) {
    throw new Error(`child exited ${result.status ?? result.signal}:\n${result.stderr}\n${result.stdout}`);
  }
  return JSON.parse(result.stdout) as T;
}
