// At most maxJobs builds run at once; the others wait in arrival order and hear their place
// in the queue whenever it changes.

export interface Job {
  id: string;
  /** Told 1 for the next job to start; called again as jobs ahead leave. */
  onPosition(position: number): void;
  run(): Promise<void>;
}

export class Scheduler {
  private waiting: Job[] = [];
  private running = new Map<string, Promise<void>>();

  constructor(private readonly maxJobs: number) {}

  submit(job: Job): void {
    this.waiting.push(job);
    this.pump();
    if (this.waiting.includes(job)) job.onPosition(this.waiting.length);
  }

  /** Takes a job out of the queue before it starts; false if it is not waiting. */
  withdraw(id: string): boolean {
    const index = this.waiting.findIndex((j) => j.id === id);
    if (index < 0) return false;
    this.waiting.splice(index, 1);
    this.announce(index);
    return true;
  }

  /** Empties the queue (shutdown) and returns the jobs that never started. */
  drain(): Job[] {
    return this.waiting.splice(0);
  }

  /** Resolves once every started job has ended. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  get runningCount(): number {
    return this.running.size;
  }

  private pump(): void {
    let started = 0;
    while (this.running.size < this.maxJobs && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      started++;
      const done = job.run().finally(() => {
        this.running.delete(job.id);
        this.pump();
      });
      this.running.set(job.id, done);
    }
    if (started > 0) this.announce(0);
  }

  private announce(from: number): void {
    for (let i = from; i < this.waiting.length; i++) this.waiting[i].onPosition(i + 1);
  }
}
