// slirp4netns for `network: slirp`, as guix-daemon runs it for fixed-output builds. It attaches
// to the build's network namespace through an fd the supervisor holds (so init's pid, which
// could die and be reused, never matters), runs sandboxed under its own seccomp filter, and
// exits when its exit fd closes: when the supervisor stops it, or when the supervisor dies.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import type { Socket } from 'node:net';
import { delimiter, isAbsolute, join } from 'node:path';
import type { NetworkPlan } from '../plan/types.js';
import { processEnded } from '../pool/index.js';

/** fds of the slirp4netns process: it writes to READY once tap0 is configured. */
const READY_FD = 3;
const EXIT_FD = 4;
const NETNS_FD = 5;
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;
/** What is kept of its output, for error messages. */
const OUTPUT_LIMIT = 4096;

export const SLIRP_BINARY = 'slirp4netns';

export interface Slirp {
  /** Closes its exit fd and waits for it to end (SIGKILL if it does not). */
  stop(): Promise<void>;
}

export interface SlirpOptions {
  /** Called if slirp4netns ends on its own after the network was ready. */
  onUnexpectedExit?: (description: string) => void;
}

export function slirpArgs(network: NetworkPlan): string[] {
  return [
    '--configure', '--mtu=65520',
    ...(network.allowHostLoopback ? [] : ['--disable-host-loopback']),
    '--enable-sandbox', '--enable-seccomp',
    `--ready-fd=${READY_FD}`, `--exit-fd=${EXIT_FD}`,
    '--netns-type=path', `/proc/self/fd/${NETNS_FD}`, 'tap0',
  ];
}

/** The slirp4netns binary from the supervisor's PATH. */
export function findSlirp(path = process.env.PATH ?? ''): string {
  for (const dir of path.split(delimiter).filter(isAbsolute)) {
    const candidate = join(dir, SLIRP_BINARY);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`network: slirp: ${SLIRP_BINARY} not found in PATH (${path || 'empty'}); install it (Debian package slirp4netns)`);
}

/** What happened, then what slirp4netns said, on one line. */
function explainEnd(what: string, output: string): string {
  const said = output.trim().replace(/\s*\n\s*/g, '; ');
  return said ? `${what}: ${said}` : what;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null, when: string, output: string): string {
  return explainEnd(`${signal ? `killed by ${signal}` : `exited with status ${code}`} ${when}`, output);
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts slirp4netns on the network namespace `netnsFd` and resolves once the build's network
 * is configured (tap0 up with 10.0.2.100, default route via 10.0.2.2). Rejects, with nothing
 * left running, if it cannot start, ends or does not report ready in time.
 */
export function startSlirp(netnsFd: number, network: NetworkPlan, options: SlirpOptions = {}): Promise<Slirp> {
  const binary = findSlirp();
  // Its own session: a terminal's ^C reaches the supervisor, which decides; the exit fd ends it.
  const child = spawn(binary, slirpArgs(network), { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', netnsFd], env: {}, cwd: '/', detached: true });
  let output = '';
  const outputClosed = Promise.all([child.stdout!, child.stderr!].map((stream) => {
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => (output = (output + text).slice(-OUTPUT_LIMIT)));
    return new Promise((closed) => stream.once('close', closed));
  }));
  const exitFd = child.stdio[EXIT_FD] as Socket;
  const readyFd = child.stdio[READY_FD] as Socket;
  let stopping = false;
  // An end we did not ask for is reported even when the build finishes while its last words are read.
  let exitReported: Promise<void> = Promise.resolve();

  // Ended on its own before stop() (a zombie whose exit event is not handled yet): still reported.
  let endedBeforeStop = false;

  // Told to end, it exits of itself: killed by a signal only if it outlived STOP_GRACE_MS.
  let killedByUs = false;

  const stop = async (): Promise<void> => {
    endedBeforeStop ||= !stopping && child.pid !== undefined && processEnded(child.pid);
    stopping = true;
    exitFd.destroy();
    const killer = setTimeout(() => {
      killedByUs = true;
      child.kill('SIGKILL');
    }, STOP_GRACE_MS);
    await waitForExit(child);
    clearTimeout(killer);
    readyFd.destroy();
    await exitReported;
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop().then(() => reject(new Error(`network: slirp: ${binary} ${why}`)));
    };
    const timer = setTimeout(() => fail(explainEnd(`did not report the network ready within ${READY_TIMEOUT_MS / 1000} s`, output)), READY_TIMEOUT_MS);
    child.on('error', (err) => fail(`could not start: ${err.message}`));
    child.on('exit', (code, signal) => {
      // A signal it was not sent here came while the build ran, even if it was still exiting (its
      // tap device already gone, which may have ended the build) when stop() looked.
      const unexpected = !stopping || endedBeforeStop || (signal !== null && !killedByUs);
      // Its last words explain the exit; a descendant holding the pipes must not delay us long.
      exitReported = Promise.race([outputClosed, new Promise((later) => setTimeout(later, 200))]).then(() => {
        if (!settled) return fail(describeExit(code, signal, 'before the network was ready', output));
        if (unexpected) options.onUnexpectedExit?.(`${binary} ${describeExit(code, signal, 'during the build, which has no network any more', output)}`);
      });
    });
    readyFd.on('data', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ stop });
    });
    readyFd.on('error', () => {
      // A ready fd closed early shows up as the process's exit.
    });
  });
}
