// Calls only the conformance probes make: raw syscalls whose answer, not an exception, is what
// is observed, and the device-node and terminal attempts a sandbox must refuse.
import { FILE_TYPE, IOCTL } from '../ffi/arch.js';
import { quote, renderEnum, renderMode } from '../ffi/errors.js';
import { check, koffi, lastErrno, libc } from '../ffi/lib.js';
import { ioctlPointer } from '../ffi/libc.js';

export type SyscallArg = number | bigint | string | Buffer | null;

export interface SyscallResult {
  result: number;
  /** errno when result is -1, 0 otherwise. */
  errno: number;
}

/**
 * syscall(2) returning the raw result and errno instead of throwing, because the caller wants
 * to tell "refused by the policy" from "reached the kernel".
 */
export function rawSyscall(number: number, ...args: SyscallArg[]): SyscallResult {
  const variadic = args.flatMap((a): [string, SyscallArg] => {
    if (typeof a === 'string') return ['const char *', a];
    if (a === null || Buffer.isBuffer(a)) return ['void *', a];
    return ['long', a];
  });
  koffi.errno(0);
  const result = Number(libc().syscall(number, ...variadic));
  return { result, errno: result === -1 ? lastErrno() : 0 };
}

/** The dev_t of a device number pair, as glibc's makedev() builds it. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return (mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n);
}

/** `mode` holds the file type (S_IFCHR, S_IFBLK, S_IFIFO…) and the permission bits. */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  check(libc().mknod(path, mode, makedev(major, minor)), 'mknod', () => {
    const type = renderEnum(mode & 0o170000, FILE_TYPE);
    return `${quote(path)}, ${type}|${renderMode(mode & 0o7777)}, ${major}:${minor}`;
  });
}

/** Pushes one byte into the terminal's input queue: TIOCSTI must be refused in a sandbox. */
export function injectTtyInput(fd: number, byte: string): void {
  const data = Buffer.from(byte.slice(0, 1));
  ioctlPointer(fd, IOCTL.TIOCSTI, data, () => quote(byte.slice(0, 1)));
}
