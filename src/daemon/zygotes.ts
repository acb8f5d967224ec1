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
import { Zygote, type Log } from '../runtime/zygote-client.js';

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
