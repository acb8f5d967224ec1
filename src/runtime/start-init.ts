// How a build's init starts, as PID 1 of a fresh PID namespace: forked (from this process,
// zygote.ts, or by one of the daemon's zygote processes), verified and retried, or a fresh Node
// running init.cjs (the fallback, and for plans whose network namespace the supervisor makes).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CLONE_FLAGS } from '../ffi/arch.js';
import { setns, unshare } from '../ffi/libc.js';
import type { InitRequest } from './request.js';
import { ForkedInit, FORK_ATTEMPTS, verify } from './zygote.js';

// init.ts and its imports bundled into one CommonJS file by `npm run build` (scripts/bundle-init.mjs):
// Node's ES module loader, for its ~20 modules, was most of what init's start-up cost beyond node's own.
const INIT_PATH = fileURLToPath(new URL('./init.cjs', import.meta.url));
const INIT_MODULE_PATH = fileURLToPath(new URL('./init.js', import.meta.url));

/** What forks a build's init: this process (forkInit) or a zygote process of the daemon's. */
export interface InitForker {
  fork(request: InitRequest): ForkedInit | Promise<ForkedInit>;
}

/** init as the supervisor sees it, forked or spawned. */
export type InitProcess = ChildProcess | ForkedInit;

export function killTree(child: InitProcess): void {
  // SIGKILL to PID 1 of the build's namespace: the kernel then kills every process in it.
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** tsc rewrites init.js and every module it imports: a bundle older than init.js lacks their changes. */
function checkInitBundle(): void {
  const bundle = statSync(INIT_PATH, { throwIfNoEntry: false });
  if (!bundle) throw new Error(`init bundle ${INIT_PATH} is missing: run \`npm run build\` (tsc alone does not make it)`);
  const compiled = statSync(INIT_MODULE_PATH, { throwIfNoEntry: false });
  if (compiled && compiled.mtimeMs > bundle.mtimeMs) throw new Error(`init bundle ${INIT_PATH} is older than ${INIT_MODULE_PATH}: run \`npm run build\``);
}

/**
 * Starts init as PID 1 of a fresh PID namespace, and for slirp in a fresh network namespace
 * whose fd it returns (slirp4netns attaches to it while init starts up). The supervisor's own
 * namespaces are restored at once.
 */
export function spawnInit(newNet: boolean): { child: ChildProcess; netns?: number } {
  checkInitBundle();
  const own = { pid: openSync('/proc/thread-self/ns/pid', 'r'), net: newNet ? openSync('/proc/thread-self/ns/net', 'r') : undefined };
  try {
    unshare(CLONE_FLAGS.CLONE_NEWPID | (newNet ? CLONE_FLAGS.CLONE_NEWNET : 0));
    let netns: number | undefined;
    try {
      if (newNet) netns = openSync('/proc/thread-self/ns/net', 'r');
      return { child: spawn(process.execPath, [INIT_PATH], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], env: {}, cwd: '/' }), netns };
    } catch (err) {
      if (netns !== undefined) closeSync(netns);
      throw err;
    } finally {
      setns(own.pid, CLONE_FLAGS.CLONE_NEWPID);
      if (own.net !== undefined) setns(own.net, CLONE_FLAGS.CLONE_NEWNET);
    }
  } finally {
    closeSync(own.pid);
    if (own.net !== undefined) closeSync(own.net);
  }
}

export interface ForkOptions {
  forker: InitForker;
  /** Told each child's pid before it starts its set-up (the build's record). */
  adopt: (pid: number) => void;
  /** Takes each child forked: the caller kills it whatever happens. */
  own: (child: ForkedInit) => void;
  onNotice?: (message: string) => void;
  signal?: AbortSignal;
}

/**
 * init forked, verified up to its execve. A fork lost before it could report is retried on a
 * fresh one; undefined after FORK_ATTEMPTS (or if the forker cannot fork): the caller starts a
 * fresh Node init instead.
 */
export async function startForked(request: InitRequest, options: ForkOptions): Promise<{ child: ForkedInit; setupError?: string } | undefined> {
  for (let attempt = 1; attempt <= FORK_ATTEMPTS; attempt++) {
    let child: ForkedInit;
    try {
      child = await options.forker.fork(request);
    } catch (err) {
      options.onNotice?.(`init: cannot fork (${err instanceof Error ? err.message : String(err)}); starting a fresh Node init`);
      return undefined;
    }
    options.own(child);
    options.adopt(child.pid);
    const verdict = await verify(child, options.onNotice, options.signal);
    // Cancelled: supervise() sees the signal aborted and reports the build so.
    if (verdict.kind === 'exec' || options.signal?.aborted) return { child };
    if (verdict.kind === 'setup-failed') return { child, setupError: verdict.error };
    const next = attempt < FORK_ATTEMPTS ? 'retrying on a fresh fork' : 'starting a fresh Node init';
    options.onNotice?.(`init: forked set-up ${attempt} of ${FORK_ATTEMPTS} lost (pid ${child.pid}: ${verdict.why}); ${next}`);
  }
  return undefined;
}
