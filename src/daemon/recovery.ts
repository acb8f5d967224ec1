// Crash safety: the daemon's state directory holds its lock (one daemon per directory). What a
// crashed daemon's builds left behind (processes, cgroups, build directories, hand-over staging,
// lock records) is in the build registry, which every build on the machine shares: on start the
// daemon cleans after every dead build there, as each admission of a build does.
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { flock, LOCK_EX, LOCK_NB } from '../ffi/libc.js';
import { makePrivateDir } from '../pool/lock.js';
import { SyscallError } from '../ffi/errors.js';
import { recoverStale, registryPath } from '../runtime/records.js';

/** The daemon's state directory: one lock (one daemon per directory). */
export class StateDir {
  private lockFd: number | undefined;

  constructor(readonly path: string) {}

  /** Takes the daemon lock; throws when another daemon holds it. */
  lock(): void {
    makePrivateDir(this.path);
    const file = join(this.path, 'daemon.lock');
    const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    try {
      flock(fd, LOCK_EX | LOCK_NB);
    } catch (err) {
      closeSync(fd);
      if (err instanceof SyscallError && err.errno === 11) {
        throw new Error(`another stockade daemon (pid ${readFileSync(file, 'utf8').trim() || 'unknown'}) uses state directory ${this.path}`);
      }
      throw err;
    }
    ftruncateSync(fd, 0);
    writeFileSync(fd, `${process.pid}\n`);
    this.lockFd = fd;
  }

  unlock(): void {
    if (this.lockFd !== undefined) closeSync(this.lockFd);
    this.lockFd = undefined;
  }

  /** Cleans after every dead build of the registry; returns what was removed, one line each. */
  recover(registry = registryPath()): Promise<string[]> {
    return recoverStale(registry);
  }
}
