// Architecture facts the FFI layer depends on. Stockade supports x86_64 only for now:
// syscall numbers, struct layouts and the seccomp ABI list are written for it, so any other
// architecture fails at load time instead of calling the wrong syscall.
import { arch } from 'node:process';

export const SUPPORTED_ARCHITECTURES = ['x64'] as const;

export function assertSupportedArch(): void {
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new Error(
      `stockade: architecture ${arch} is not supported (supported: x86_64); ` +
        'syscall numbers and struct layouts are only defined for x86_64',
    );
  }
}

/** x86_64 syscall numbers used directly through syscall(2). */
export const SYS = {
  pivot_root: 155,
  close_range: 436,
  fchmodat2: 452,
  landlock_create_ruleset: 444,
  landlock_add_rule: 445,
  landlock_restrict_self: 446,
  capget: 125,
  capset: 126,
} as const;

/** Linux errno numbers (asm-generic values, which x86_64 uses). */
export const ERRNO: Record<string, number> = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8,
  EBADF: 9, ECHILD: 10, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, ENOTBLK: 15,
  EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22,
  ENFILE: 23, EMFILE: 24, ENOTTY: 25, ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29,
  EROFS: 30, EMLINK: 31, EPIPE: 32, EDOM: 33, ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36,
  ENOLCK: 37, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, ENOMSG: 42, EIDRM: 43, ENODATA: 61,
  ENOTSUP: 95, EOPNOTSUPP: 95, EADDRINUSE: 98, EADDRNOTAVAIL: 99, ENETDOWN: 100,
  ENETUNREACH: 101, ECONNABORTED: 103, ECONNRESET: 104, ENOBUFS: 105, EISCONN: 106,
  ENOTCONN: 107, ETIMEDOUT: 110, ECONNREFUSED: 111, EHOSTUNREACH: 113, EALREADY: 114,
  EINPROGRESS: 115, EDQUOT: 122, ECANCELED: 125, EOWNERDEAD: 130,
  ENOTSOCK: 88, EDESTADDRREQ: 89, EMSGSIZE: 90, EPROTOTYPE: 91, ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93, ESOCKTNOSUPPORT: 94, EPFNOSUPPORT: 96, EAFNOSUPPORT: 97,
};

const ERRNO_NAMES: Map<number, string> = new Map();
for (const [name, value] of Object.entries(ERRNO)) {
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
}

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

export function errnoNumber(name: string): number | undefined {
  return ERRNO[name];
}
