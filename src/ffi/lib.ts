// Loads shared libraries once, lazily, so a command that never touches the FFI pays nothing.
import { createRequire } from 'node:module';
import type { LibraryHandle } from 'koffi';
import { assertSupportedArch } from './arch.js';
import { SyscallError } from './errors.js';

// koffi's CommonJS build: its ES module entry imports node:fs, node:util and node:module as ES
// modules, whose facades cost start-up time that init pays on every build. In the init bundle
// (scripts/bundle-init.mjs) import.meta.url is the bundle's own URL: koffi resolves from either.
const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');

let libc: LibraryHandle | undefined;
let strerrorFn: ((errno: number) => string) | undefined;

export function loadLibc(): LibraryHandle {
  if (!libc) {
    assertSupportedArch();
    libc = koffi.load('libc.so.6');
  }
  return libc;
}

/** The text libc gives for an errno. */
export function strerror(errno: number): string {
  strerrorFn ??= loadLibc().func('const char *strerror(int errnum)') as (e: number) => string;
  return strerrorFn(errno);
}

/** The errno left by the last foreign call on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

/**
 * Throws a SyscallError when a libc call returned -1 (or a negative value); returns the value otherwise.
 * `describe` renders the arguments only on failure, so the success path costs nothing.
 */
export function check<T extends number | bigint>(result: T, call: string, describe: () => string): T {
  if (result < 0) {
    const errno = lastErrno();
    throw new SyscallError(call, describe(), errno, strerror(errno));
  }
  return result;
}

/** Throws a SyscallError for a call that reports failure through its return value (pthread style). */
export function fail(call: string, args: string, errno: number): never {
  throw new SyscallError(call, args, errno, strerror(errno));
}

export { koffi };
