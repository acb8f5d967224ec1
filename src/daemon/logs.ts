// Every build's whole log, kept in STATE_DIR/logs as guix-daemon keeps /var/log/guix/drvs: the
// builder's stdout and stderr as they came, and Stockade's notices. What a client does not read
// still lands here. Bounded twice, because a build's output is its user's to choose: a file
// keeps a build's first maxBytes and then says it was truncated; only the newest `kept` files
// stay. Names start with the time the build started, so their order is their age.
import { closeSync, readdirSync, writeSync } from 'node:fs';
import { OPEN_FLAGS } from '../ffi/arch.js';
import { unlinkat } from '../ffi/fsat.js';
import { isMissing, makeDirsBeneath, openBeneath, openRoot } from '../ffi/resolve.js';

const LOG_NAME = /^\d{8}T\d{9}Z-[0-9a-f]{16}\.log$/;

export interface BuildLogLimits {
  /** Bytes a build's log file keeps (0: no log files). */
  maxBytes: number;
  /** Log files kept, the newest. */
  kept: number;
}

export class BuildLogs {
  private dirFd: number | undefined;
  /** Names of the kept files, oldest first. */
  private names: string[] = [];

  constructor(
    private readonly stateDir: string,
    private readonly limits: BuildLogLimits,
    private readonly log: (message: string) => void,
  ) {}

  /** Opens (making it) STATE_DIR/logs, beneath the state directory's fd. */
  open(): void {
    if (this.limits.maxBytes === 0) return;
    const root = openRoot(this.stateDir);
    try {
      this.dirFd = makeDirsBeneath(root, 'logs', 0o700, undefined, 'build log directory');
    } finally {
      closeSync(root);
    }
    this.names = readdirSync(`/proc/self/fd/${this.dirFd}`).filter((name) => LOG_NAME.test(name)).sort();
    this.prune();
  }

  close(): void {
    if (this.dirFd !== undefined) closeSync(this.dirFd);
    this.dirFd = undefined;
  }

  get directory(): string {
    return `${this.stateDir}/logs`;
  }

  /** A new log file for build `id`; one that cannot be made is logged and writes nothing (the build goes on). */
  create(id: string): BuildLog {
    if (this.dirFd === undefined) return new BuildLog(undefined, '', 0, this.log);
    const name = `${new Date().toISOString().replace(/[-:.]/g, '')}-${id}.log`;
    let fd: number | undefined;
    try {
      fd = openBeneath(this.dirFd, name, OPEN_FLAGS.O_WRONLY | OPEN_FLAGS.O_CREAT | OPEN_FLAGS.O_EXCL, { mode: 0o600, label: 'build log' });
      this.names.push(name);
      this.prune();
    } catch (err) {
      this.log(`build ${id}: no log file: ${(err as Error).message}`);
    }
    return new BuildLog(fd, `${this.directory}/${name}`, this.limits.maxBytes, this.log);
  }

  private prune(): void {
    while (this.names.length > this.limits.kept) {
      const oldest = this.names.shift()!;
      try {
        unlinkat(this.dirFd!, oldest, 0);
      } catch (err) {
        if (!isMissing(err)) this.log(`cannot remove old build log ${oldest}: ${(err as Error).message}`);
      }
    }
  }
}

export class BuildLog {
  private written = 0;
  private truncated = false;

  constructor(
    private fd: number | undefined,
    readonly path: string,
    private readonly maxBytes: number,
    private readonly log: (message: string) => void,
  ) {}

  /** Appends; past maxBytes only a line saying so. True the first time a write was cut. */
  write(data: Buffer | string): boolean {
    if (this.fd === undefined || this.truncated) return false;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const room = this.maxBytes - this.written;
    const cut = bytes.length > room;
    this.put(cut ? bytes.subarray(0, room) : bytes);
    if (!cut) return false;
    this.truncated = true;
    this.put(Buffer.from(`\nstockade: log truncated here: it reached ${this.maxBytes} bytes (max_log_size)\n`));
    return true;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private put(bytes: Buffer): void {
    try {
      // Synchronous: a file that fills slower than the build writes must not grow the daemon's memory.
      for (let offset = 0; offset < bytes.length; ) offset += writeSync(this.fd!, bytes, offset);
      this.written += bytes.length;
    } catch (err) {
      this.log(`cannot write build log ${this.path}, it stops here: ${(err as Error).message}`);
      this.close();
    }
  }
}
