// Thin, typed libc wrappers. Each one throws a SyscallError naming the call and its arguments.
import { check, loadLibc, koffi } from './lib.js';
import { quote } from './errors.js';

type Fn = (...args: any[]) => any;
const cache = new Map<string, Fn>();

/** Declares a libc function once, on first use. */
export function libcFn(prototype: string): Fn {
  let fn = cache.get(prototype);
  if (!fn) {
    fn = loadLibc().func(prototype) as Fn;
    cache.set(prototype, fn);
  }
  return fn;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
const LOCK_FLAGS = { LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN };

export function flock(fd: number, operation: number): void {
  check(libcFn('int flock(int fd, int operation)')(fd, operation), 'flock', () => {
    const names = Object.entries(LOCK_FLAGS).filter(([, bit]) => (operation & bit) !== 0).map(([n]) => n);
    return `${fd}, ${names.join('|') || operation}`;
  });
}

export function kill(pid: number, signal: number): void {
  check(libcFn('int kill(int pid, int sig)')(pid, signal), 'kill', () => `${pid}, ${signal}`);
}

export function chdir(path: string): void {
  check(libcFn('int chdir(const char *path)')(path), 'chdir', () => quote(path));
}

export { koffi };
