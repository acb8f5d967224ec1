// At most maxJobs builds run at once, and at most maxRunningPerOwner of one user's. Each user's
// builds wait in their own queue, in arrival order; users take turns (round-robin, the user
// served longest ago first, one who has not been served yet before anyone), so one user's flood
// does not delay another's build beyond the next free slot. A waiting build hears its place
// among its own user's builds when queued, and again at each change once it is among that
// user's next POSITION_UPDATES: a start or a withdrawal costs at most that many events, whatever
// the length of the queue.

/** Waiting builds of a user, from the front, that hear each change of their place. */
export const POSITION_UPDATES = 10;

export interface Job {
  id: string;
  /** Whose build it is (a uid): the unit of fairness and of the per-user bounds. */
  owner: number;
  /** Told 1 when it is the next of its owner's builds to start; called when queued, and as those ahead leave once it is among the first POSITION_UPDATES. */
  onPosition(position: number): void;
  run(): Promise<void>;
}

export interface SchedulerOptions {
  maxJobs: number;
  /** Builds of one owner running at once (default maxJobs). */
  maxRunningPerOwner?: number;
  /** A job whose run() threw or rejected: its slot is freed all the same. */
  onError: (job: Job, err: unknown) => void;
}

export class Scheduler {
  /** Waiting jobs per owner, owners in order of arrival. */
  private readonly queues = new Map<number, Job[]>();
  /** When each owner with builds queued or running last had one started. */
  private readonly lastServed = new Map<number, number>();
  private starts = 0;
  private readonly running = new Map<string, Promise<void>>();
  private readonly runningPerOwner = new Map<number, number>();
  private readonly maxJobs: number;
  private readonly maxRunningPerOwner: number;
  private readonly onError: SchedulerOptions['onError'];

  constructor(options: SchedulerOptions) {
    this.maxJobs = options.maxJobs;
    this.maxRunningPerOwner = options.maxRunningPerOwner ?? options.maxJobs;
    this.onError = options.onError;
  }

  submit(job: Job): void {
    const queue = this.queues.get(job.owner);
    if (queue) queue.push(job);
    else this.queues.set(job.owner, [job]);
    this.pump();
    const position = this.queues.get(job.owner)?.indexOf(job) ?? -1;
    if (position >= 0) job.onPosition(position + 1);
  }

  /** Takes a job out of the queue before it starts; false if it is not waiting. */
  withdraw(id: string, owner: number): boolean {
    const queue = this.queues.get(owner);
    const index = queue?.findIndex((j) => j.id === id) ?? -1;
    if (!queue || index < 0) return false;
    queue.splice(index, 1);
    if (queue.length === 0) {
      this.queues.delete(owner);
      if (!this.runningPerOwner.has(owner)) this.lastServed.delete(owner);
    } else announce(queue, index);
    return true;
  }

  /** Empties the queue (shutdown) and returns the jobs that never started. */
  drain(): Job[] {
    const jobs = [...this.queues.values()].flat();
    this.queues.clear();
    return jobs;
  }

  /** Resolves once every started job has ended. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  get runningCount(): number {
    return this.running.size;
  }

  queuedOf(owner: number): number {
    return this.queues.get(owner)?.length ?? 0;
  }

  runningOf(owner: number): number {
    return this.runningPerOwner.get(owner) ?? 0;
  }

  /** Whether a job of this owner submitted now would wait rather than start. */
  wouldWait(owner: number): boolean {
    return this.running.size >= this.maxJobs || this.runningOf(owner) >= this.maxRunningPerOwner || this.queues.has(owner);
  }

  private pump(): void {
    while (this.running.size < this.maxJobs) {
      const owner = this.nextOwner();
      if (owner === undefined) return;
      const queue = this.queues.get(owner)!;
      const job = queue.shift()!;
      if (queue.length === 0) this.queues.delete(owner);
      this.start(job);
      if (queue.length) announce(queue, 0);
    }
  }

  /** The owner whose turn it is: of those with waiting jobs and a free running place, the one served longest ago. */
  private nextOwner(): number | undefined {
    let next: number | undefined;
    let nextServed = Infinity;
    for (const owner of this.queues.keys()) {
      if (this.runningOf(owner) >= this.maxRunningPerOwner) continue;
      const served = this.lastServed.get(owner) ?? -1;
      if (served < nextServed) [next, nextServed] = [owner, served];
    }
    return next;
  }

  private start(job: Job): void {
    this.runningPerOwner.set(job.owner, this.runningOf(job.owner) + 1);
    this.lastServed.set(job.owner, this.starts++);
    // A synchronous throw becomes a rejection, and every rejection ends here: never unhandled.
    const done = Promise.resolve()
      .then(() => job.run())
      .catch((err: unknown) => this.onError(job, err))
      .catch(() => {
        // The report failed too; the slot must be freed all the same.
      })
      .finally(() => {
        this.running.delete(job.id);
        const left = this.runningOf(job.owner) - 1;
        if (left > 0) this.runningPerOwner.set(job.owner, left);
        else {
          this.runningPerOwner.delete(job.owner);
          if (!this.queues.has(job.owner)) this.lastServed.delete(job.owner);
        }
        this.pump();
      });
    this.running.set(job.id, done);
  }
}

function announce(queue: Job[], from: number): void {
  for (let i = from; i < Math.min(queue.length, POSITION_UPDATES); i++) queue[i].onPosition(i + 1);
}
