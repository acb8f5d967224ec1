// A zygote process (zygote-server.ts) as its user sees it: started with `node --single-threaded`,
// told which of this process's pipes each child is to open, it forks inits and relays their
// exit statuses. The daemon keeps one per job slot (daemon/zygotes.ts); `stockade conformance
// --init zygote` uses one to run its probes the daemon's way.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { OPEN_FLAGS } from '../ffi/arch.js';
import { pipe2 } from '../ffi/libc.js';
import type { InitRequest } from './request.js';
import type { InitForker } from './start-init.js';
import { FAULT_VARIABLE, ForkedInit } from './zygote.js';
import { LineSplitter } from './lines.js';

const ZYGOTE_PATH = fileURLToPath(new URL('./zygote-server.js', import.meta.url));

export type Log = (message: string) => void;
/** From a fork command to the zygote's answer: it only forks, so anything near this is a wedged zygote. */
const FORK_REPLY_MS = 15_000;

interface ZygoteEvent {
  ready?: boolean;
  forked?: number;
  refused?: number;
  pid?: number;
  error?: string;
  exit?: number;
  code?: number | null;
  signal?: NodeJS.Signals | null;
}

/** One zygote process, as the daemon sees it. */
export class Zygote implements InitForker {
  readonly process: ChildProcess;
  readonly ready: Promise<boolean>;
  private exited = false;
  private nextId = 0;
  /** Fork commands sent, by id: what to do with the pid, or with the refusal. */
  private readonly pending = new Map<number, { forked: (pid: number) => void; refused: (error: Error) => void }>();
  /** Inits it forked that it has not reaped yet, by pid. */
  private readonly children = new Map<number, ForkedInit>();

  constructor(log: Log) {
    // Only the fault-injection knob of tests: the zygote needs nothing of the daemon's environment.
    const env: Record<string, string> = {};
    if (process.env[FAULT_VARIABLE]) env[FAULT_VARIABLE] = process.env[FAULT_VARIABLE]!;
    this.process = spawn(process.execPath, ['--single-threaded', ZYGOTE_PATH], { stdio: ['pipe', 'pipe', 'inherit'], env, cwd: '/' });
    const { stdin, stdout } = this.process;
    stdin!.on('error', () => {
      // EPIPE: it has died, which 'exit' tells.
    });
    let isReady: (ready: boolean) => void;
    this.ready = new Promise((resolve) => (isReady = resolve));
    const lines = new LineSplitter((line) => {
      let event: ZygoteEvent;
      try {
        event = JSON.parse(line) as ZygoteEvent;
      } catch {
        log(`zygote pid ${this.process.pid}: unreadable line ignored: ${JSON.stringify(line.slice(0, 100))}`);
        return;
      }
      this.event(event, isReady);
    });
    stdout!.setEncoding('utf8');
    stdout!.on('data', (text: string) => lines.push(text));
    this.process.on('error', (err) => log(`zygote: cannot start one: ${err.message}`));
    this.process.once('exit', (code, signal) => {
      this.exited = true;
      isReady(false);
      if (!this.closing) log(`zygote pid ${this.process.pid}: ended (${signal ?? code}); ${this.children.size} inits it forked end with it`);
      for (const { refused } of this.pending.values()) refused(new Error(`zygote pid ${this.process.pid} ended (${signal ?? code})`));
      this.pending.clear();
      // Their parent-death signal killed them; only the zygote could have told how they ended.
      for (const child of this.children.values()) child.reaped({ code: null, signal: 'SIGKILL' });
      this.children.clear();
    });
  }

  private closing = false;

  get alive(): boolean {
    return !this.exited;
  }

  private event(event: ZygoteEvent, isReady: (ready: boolean) => void): void {
    if (event.ready) {
      isReady(true);
    }
    if (event.forked !== undefined) this.pending.get(event.forked)?.forked(event.pid!);
    if (event.refused !== undefined) this.pending.get(event.refused)?.refused(new Error(`zygote pid ${this.process.pid} could not fork: ${event.error}`));
    this.pending.delete(event.forked ?? event.refused ?? -1);
    if (event.exit !== undefined) {
      const child = this.children.get(event.exit);
      this.children.delete(event.exit);
      child?.reaped({ code: event.code ?? null, signal: event.signal ?? null });
    }
  }

  private send(command: object): void {
    this.process.stdin!.write(JSON.stringify(command) + '\n');
  }

  /**
   * Has the zygote fork an init for `request`: the child opens the pipes made here through
   * /proc, says so (READY_LINE, which verify() hands to the child's control), and only then is
   * sent its request: the zygote itself never sees it.
   */
  fork(request: InitRequest): Promise<ForkedInit> {
    if (this.exited) return Promise.reject(new Error(`zygote pid ${this.process.pid} has ended`));
    const pipes: number[] = [];
    try {
      const make = () => {
        const ends = pipe2(OPEN_FLAGS.O_CLOEXEC);
        pipes.push(...ends);
        return ends;
      };
      const [stdoutRead, stdoutWrite] = make();
      const [stderrRead, stderrWrite] = make();
      const [statusRead, statusWrite] = make();
      const [requestRead, requestWrite] = make();
      /** The child's ends: held here until it has opened its own copies. */
      let childEnds: number[] | undefined = [stdoutWrite, stderrWrite, statusWrite, requestRead];
      const releaseChildEnds = () => {
        for (const fd of childEnds ?? []) closeSync(fd);
        childEnds = undefined;
      };
      const requestStream = new Socket({ fd: requestWrite, readable: false, writable: true });
      // EPIPE: the child died before it read its request; its status says so.
      requestStream.on('error', () => {});
      const id = ++this.nextId;
      const forked = new Promise<ForkedInit>((resolve, reject) => {
        // A zygote that does not answer is wedged: killed (its children die with it) and replaced at the next take.
        const wedged = setTimeout(() => {
          this.pending.get(id)?.refused(new Error(`zygote pid ${this.process.pid} did not answer within ${FORK_REPLY_MS / 1000} s; killed`));
          this.pending.delete(id);
          this.process.kill('SIGKILL');
        }, FORK_REPLY_MS);
        this.pending.set(id, {
          forked: (pid) => {
            clearTimeout(wedged);
            const child = new ForkedInit(pid, reader(stdoutRead), reader(stderrRead), reader(statusRead), {
              statusEndsAtDeath: false,
              // It waits for its request, sent once it has opened its pipes.
              start: () => {},
              ready: () => {
                releaseChildEnds();
                requestStream.end(JSON.stringify(request));
              },
              signal: (signal) => this.send({ kill: pid, signal }),
              reaped: () => {
                releaseChildEnds();
                requestStream.destroy();
              },
            });
            this.children.set(pid, child);
            resolve(child);
          },
          refused: (err) => {
            clearTimeout(wedged);
            releaseChildEnds();
            requestStream.destroy();
            for (const fd of [stdoutRead, stderrRead, statusRead]) closeSync(fd);
            reject(err);
          },
        });
      });
      pipes.length = 0;
      this.send({ fork: id, from: process.pid, fds: { stdout: stdoutWrite, stderr: stderrWrite, status: statusWrite, request: requestRead } });
      return forked;
    } catch (err) {
      for (const fd of pipes) closeSync(fd);
      return Promise.reject(err);
    }
  }

  /** Ends its command pipe: it kills and reaps whatever it forked and exits. Resolves once it has. */
  close(): Promise<void> {
    this.closing = true;
    if (this.exited) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    this.process.stdin!.end();
    return exited;
  }
}

function reader(fd: number): Socket {
  return new Socket({ fd, readable: true, writable: false });
}

