// The daemon's zygotes: processes that fork builds' inits (src/runtime/zygote-server.ts), so that
// a build pays a fork, not a Node start-up, and the daemon's own event loop (whose libuv threads
// may hold locks) never forks.
//
// One zygote per job slot (`--max-jobs`, or `--warm N`), taken by a build for its run and given
// back after, rather than one per policy: a zygote holds no policy, Plan or client data at all
// (each child reads its own request from the daemon after the fork), so a per-policy zygote
// would buy no isolation, while its count would grow with the policies a config serves. Per slot,
// a build's fork never waits behind another build's, the count is bounded by what runs at once,
// and a zygote that dies takes at most its one build with it (its init dies with it, by its
// parent-death signal); the slot gets a fresh zygote, logged.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { OPEN_FLAGS } from '../ffi/arch.js';
import { pipe2 } from '../ffi/libc.js';
import type { InitRequest } from '../runtime/request.js';
import type { InitForker } from '../runtime/start-init.js';
import { FAULT_VARIABLE, ForkedInit } from '../runtime/zygote.js';
import { LineSplitter } from '../runtime/lines.js';

const ZYGOTE_PATH = fileURLToPath(new URL('../runtime/zygote-server.js', import.meta.url));

type Log = (message: string) => void;

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
    const lines = new LineSplitter((line) => this.event(JSON.parse(line) as ZygoteEvent, isReady));
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
    if (event.ready) isReady(true);
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
        this.pending.set(id, {
          forked: (pid) => {
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

/** A zygote per job slot; a build takes one for its run and gives it back. */
export class ZygotePool {
  private readonly idle: Zygote[] = [];
  private readonly all = new Set<Zygote>();
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly log: Log,
  ) {}

  private startOne(): Zygote {
    const zygote = new Zygote(this.log);
    this.all.add(zygote);
    zygote.process.once('exit', () => this.all.delete(zygote));
    this.log(`zygote pid ${zygote.process.pid} started`);
    return zygote;
  }

  /** Starts the zygotes and waits until each is ready to fork, or `timeoutMs`. */
  async start(timeoutMs: number): Promise<void> {
    for (let i = 0; i < this.size; i++) this.idle.push(this.startOne());
    let timer: NodeJS.Timeout | undefined;
    const ready = await Promise.race([
      Promise.all(this.idle.map((zygote) => zygote.ready)).then((all) => all.filter(Boolean).length),
      new Promise<number>((resolve) => (timer = setTimeout(() => resolve(-1), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (ready === -1) this.log(`zygote: not all ${this.size} ready after ${timeoutMs / 1000} s; builds may wait for them`);
    else this.log(`zygote: ${ready} of ${this.size} ready`);
  }

  /** A zygote for one build, or undefined (its init is then a fresh Node). A dead one is replaced first. */
  take(): Zygote | undefined {
    let zygote = this.idle.pop();
    if (zygote && !zygote.alive && !this.closed) {
      this.log(`zygote pid ${zygote.process.pid} had ended; starting a fresh one`);
      zygote = this.startOne();
    }
    return zygote?.alive ? zygote : undefined;
  }

  give(zygote: Zygote): void {
    if (this.closed) void zygote.close();
    else this.idle.push(zygote);
  }

  /** Ends every zygote (taken ones too: call it once no build runs) and waits for them to exit. */
  async close(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    const zygotes = [...this.all];
    await Promise.all(zygotes.map((zygote) => zygote.close()));
    if (zygotes.length) this.log(`zygote: ${zygotes.length} ended`);
  }
}
