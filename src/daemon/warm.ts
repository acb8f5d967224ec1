// Warm workers: inits started ahead, each PID 1 of its own PID namespace and waiting for a
// request, so that a build does not wait for Node to start. Each serves one build at most;
// the pool refills in the background and its idle workers are killed on shutdown.
import { setPriority } from 'node:os';
import { startWarmInit, type WarmInit } from '../runtime/start-init.js';

/**
 * Workers start at the lowest CPU priority, so that on a busy machine their Node start-up takes
 * what running builds leave; a worker handed to a build gets normal priority back.
 */
const IDLE_NICE = 19;

function prioritise(worker: WarmInit, nice: number): void {
  try {
    setPriority(worker.child.pid!, nice);
  } catch {
    // It has exited: the build that takes it finds out from its exit status.
  }
}

export class WarmPool {
  private readonly idle: WarmInit[] = [];
  private closed = false;
  private refill: NodeJS.Immediate | undefined;
  /** Told whenever a worker becomes ready or ends (whenReady waits on it). */
  private changed: (() => void) | undefined;

  constructor(
    private readonly size: number,
    private readonly log: (message: string) => void,
  ) {}

  /** Starts workers until `size` are idle. A failure to start one is logged; builds then start cold. */
  fill(): void {
    while (!this.closed && this.idle.length < this.size) {
      let worker: WarmInit;
      try {
        worker = startWarmInit(() => {
          this.log(`warm: worker pid ${worker.child.pid} ready`);
          this.changed?.();
        });
      } catch (err) {
        this.log(`warm: cannot start a worker: ${(err as Error).message}; builds start their own init`);
        return;
      }
      const { child } = worker;
      prioritise(worker, IDLE_NICE);
      child.on('error', (err) => this.log(`warm: worker failed: ${err.message}`));
      child.once('exit', (code, signal) => {
        const index = this.idle.indexOf(worker);
        if (index < 0) return;
        this.idle.splice(index, 1);
        if (!this.closed) this.log(`warm: idle worker pid ${child.pid} ended (${signal ?? code}); not refilled until the next build`);
        this.changed?.();
      });
      this.idle.push(worker);
      this.log(`warm: worker pid ${child.pid} started`);
    }
  }

  /** Resolves once every idle worker is ready, or after `timeoutMs` (saying how many are). */
  async whenReady(timeoutMs: number): Promise<void> {
    const allReady = () => this.idle.every((worker) => worker.ready);
    if (allReady()) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.changed = undefined;
        resolve();
      };
      const timer = setTimeout(() => {
        this.log(`warm: ${this.idle.filter((worker) => worker.ready).length} of ${this.idle.length} workers ready after ${timeoutMs / 1000} s; the others still starting`);
        done();
      }, timeoutMs);
      this.changed = () => allReady() && done();
    });
  }

  /**
   * An idle worker, never handed out twice, or undefined (start cold): the oldest ready one, else
   * the oldest still starting. refillSoon() replaces it.
   */
  take(): WarmInit | undefined {
    const ready = this.idle.findIndex((worker) => worker.ready);
    const [worker] = this.idle.splice(Math.max(ready, 0), 1);
    if (worker) prioritise(worker, 0);
    return worker;
  }

  /**
   * Starts the missing workers on the next turn of the event loop. Spawning forks the daemon, which
   * blocks it for longer the more memory it has (10-40 ms here): called once a build has finished,
   * the fork delays no build that is running, and an isolated build none at all.
   */
  refillSoon(): void {
    this.refill ??= setImmediate(() => {
      this.refill = undefined;
      this.fill();
    });
  }

  /** Kills every idle worker and waits for them to be gone. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.refill) clearImmediate(this.refill);
    const exits = this.idle.splice(0).map(({ child }) => {
      const exited = child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      return exited;
    });
    await Promise.all(exits);
    if (exits.length) this.log(`warm: ${exits.length} idle workers killed`);
  }
}
