// How a build's init starts, as PID 1 of a fresh PID namespace: forked from this process
// (zygote.ts), verified and retried, or a fresh Node running init.cjs (the fallback, and for
// plans whose network namespace the supervisor makes), or a warm worker started ahead.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CLONE_FLAGS } from '../ffi/arch.js';
import { setns, unshare } from '../ffi/libc.js';
import { READY_LINE, type InitRequest } from './request.js';
import { forkInit, ForkedInit, FORK_ATTEMPTS, verify } from './zygote.js';
import { LineSplitter } from './lines.js';

// init.ts and its imports bundled into one CommonJS file by `npm run build` (scripts/bundle-init.mjs):
// Node's ES module loader, for its ~20 modules, was most of what init's start-up cost beyond node's own.
const INIT_PATH = fileURLToPath(new URL('./init.cjs', import.meta.url));
const INIT_MODULE_PATH = fileURLToPath(new URL('./init.js', import.meta.url));

/** init as PID 1 of a fresh PID namespace, blocked reading its request on fd 3; nothing else set up yet. */
export interface WarmInit {
  readonly child: ChildProcess;
  /** Whether its Node has started and it waits for its request (until then a build waits for it). */
  readonly ready: boolean;
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

/**
 * Starts an init ahead of any build. Until it reads a request it only holds its PID namespace:
 * SIGKILL leaves nothing behind, and if the supervisor dies it reads end-of-file and exits.
 * `onReady` is told once init says it waits for its request.
 */
export function startWarmInit(onReady?: () => void): WarmInit {
  const { child } = spawnInit(false);
  const worker = { child, ready: false };
  // Stays attached, ignoring what follows: the build's supervisor reads the status from then on.
  const status = new LineSplitter((line) => {
    if (worker.ready || line !== READY_LINE) return;
    worker.ready = true;
    onReady?.();
  });
  const statusStream = child.stdio[4] as NodeJS.ReadableStream;
  statusStream.setEncoding('utf8');
  statusStream.on('data', (text: string) => status.push(text));
  return worker;
}

export interface ForkOptions {
  /** Told each child's pid before it starts its set-up (journal, cgroup). */
  adopt: (pid: number) => void;
  /** Takes each child forked: the caller kills it whatever happens. */
  own: (child: ForkedInit) => void;
  onNotice?: (message: string) => void;
  signal?: AbortSignal;
}

/**
 * init forked from this process (zygote.ts), verified up to its execve. A fork lost before it
 * could report is retried on a fresh one; undefined after FORK_ATTEMPTS (or if this process
 * cannot fork): the caller starts a fresh Node init instead.
 */
export async function startForked(request: InitRequest, options: ForkOptions): Promise<{ child: ForkedInit; setupError?: string } | undefined> {
  for (let attempt = 1; attempt <= FORK_ATTEMPTS; attempt++) {
    let child: ForkedInit;
    try {
      child = forkInit(request);
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
