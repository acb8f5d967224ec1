// Linux's numbers for x86_64: syscalls called directly, errno, flags, ioctl and prctl codes.
// Pure data every layer may import (the policy core checks names against it, the FFI layer
// passes the numbers to the kernel).
import { constants } from 'node:os';
import { X86_64_SYSCALLS } from './syscalls.js';

/** The syscalls called directly through syscall(2) (or named in seccomp rules built here). */
const DIRECT_SYSCALLS = [
  'pivot_root', 'open_tree', 'move_mount', 'mount_setattr', 'close_range', 'pidfd_open', 'fchmodat2',
  'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self', 'capget', 'capset', 'unshare',
  'chmod', 'fchmod', 'fchmodat', 'setxattr', 'rt_sigaction', 'rt_sigprocmask', 'add_key', 'keyctl', 'socket',
] as const;

/** Their x86_64 numbers, taken from the one syscall table. */
export const SYS = Object.fromEntries(DIRECT_SYSCALLS.map((name) => [name, X86_64_SYSCALLS[name]])) as { readonly [N in (typeof DIRECT_SYSCALLS)[number]]: number };

/** Added to an x86_64 syscall number to make the x32 ABI's number for it. */
export const X32_SYSCALL_BIT = 0x40000000;

/**
 * Linux errno numbers: Node's table for this platform, and the few Linux names it lacks
 * (asm-generic values, which x86_64 uses).
 */
export const ERRNO: Readonly<Record<string, number>> = {
  ...constants.errno,
  ENOTBLK: 15, ESOCKTNOSUPPORT: 94, EPFNOSUPPORT: 96,
  ENOKEY: 126, EKEYEXPIRED: 127, EKEYREVOKED: 128, EKEYREJECTED: 129, EOWNERDEAD: 130,
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

// Flag tables below hold for Linux on x86_64. The order of each table is the order
// renderFlags() prints names in, so the most telling names come first.

export const CLONE_FLAGS = {
  CLONE_NEWNS: 0x00020000,
  CLONE_NEWCGROUP: 0x02000000,
  CLONE_NEWUTS: 0x04000000,
  CLONE_NEWIPC: 0x08000000,
  CLONE_NEWUSER: 0x10000000,
  CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
  CLONE_NEWTIME: 0x00000080,
  CLONE_FS: 0x00000200,
  CLONE_FILES: 0x00000400,
  CLONE_SYSVSEM: 0x00040000,
} as const;

export const MOUNT_FLAGS = {
  MS_RDONLY: 0x1,
  MS_NOSUID: 0x2,
  MS_NODEV: 0x4,
  MS_NOEXEC: 0x8,
  MS_SYNCHRONOUS: 0x10,
  MS_REMOUNT: 0x20,
  MS_MANDLOCK: 0x40,
  MS_DIRSYNC: 0x80,
  MS_NOSYMFOLLOW: 0x100,
  MS_NOATIME: 0x400,
  MS_NODIRATIME: 0x800,
  MS_BIND: 0x1000,
  MS_MOVE: 0x2000,
  MS_REC: 0x4000,
  MS_SILENT: 0x8000,
  MS_POSIXACL: 0x10000,
  MS_UNBINDABLE: 0x20000,
  MS_PRIVATE: 0x40000,
  MS_SLAVE: 0x80000,
  MS_SHARED: 0x100000,
  MS_RELATIME: 0x200000,
  MS_STRICTATIME: 0x1000000,
  MS_LAZYTIME: 0x2000000,
} as const;

export const UMOUNT_FLAGS = {
  MNT_FORCE: 1,
  MNT_DETACH: 2,
  MNT_EXPIRE: 4,
  UMOUNT_NOFOLLOW: 8,
} as const;

export const OPEN_FLAGS = {
  O_WRONLY: 0o1,
  O_RDWR: 0o2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_NOCTTY: 0o400,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_NONBLOCK: 0o4000,
  O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000,
  O_CLOEXEC: 0o2000000,
  O_PATH: 0o10000000,
} as const;

export const FILE_TYPE = {
  S_IFIFO: 0o010000,
  S_IFCHR: 0o020000,
  S_IFDIR: 0o040000,
  S_IFBLK: 0o060000,
  S_IFREG: 0o100000,
  S_IFSOCK: 0o140000,
} as const;

export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const AT_FDCWD = -100;

export const PRCTL = {
  PR_SET_PDEATHSIG: 1,
  PR_GET_DUMPABLE: 3,
  PR_SET_DUMPABLE: 4,
  PR_GET_SECCOMP: 21,
  PR_CAPBSET_READ: 23,
  PR_CAPBSET_DROP: 24,
  PR_SET_NO_NEW_PRIVS: 38,
  PR_GET_NO_NEW_PRIVS: 39,
  PR_CAP_AMBIENT: 47,
} as const;
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;

/** Resource numbers of prlimit(2), by the name the Plan uses (RLIMIT_ without the prefix, lower case). */
export const RLIMIT = {
  cpu: 0,
  fsize: 1,
  data: 2,
  stack: 3,
  core: 4,
  rss: 5,
  nproc: 6,
  nofile: 7,
  memlock: 8,
  as: 9,
  locks: 10,
  sigpending: 11,
  msgqueue: 12,
  nice: 13,
  rtprio: 14,
  rttime: 15,
} as const;
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** personality(2) execution domain and flags, by the name policies use. */
export const PERSONALITY = {
  PER_LINUX32: 0x0008,
  UNAME26: 0x0020000,
  ADDR_NO_RANDOMIZE: 0x0040000,
  FDPIC_FUNCPTRS: 0x0080000,
  MMAP_PAGE_ZERO: 0x0100000,
  ADDR_COMPAT_LAYOUT: 0x0200000,
  READ_IMPLIES_EXEC: 0x0400000,
  ADDR_LIMIT_32BIT: 0x0800000,
  SHORT_INODE: 0x1000000,
  WHOLE_SECONDS: 0x2000000,
  STICKY_TIMEOUTS: 0x4000000,
  ADDR_LIMIT_3GB: 0x8000000,
} as const;

export const SOCKET_DOMAINS = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16 } as const;
export const SOCKET_TYPES = { SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_RAW: 3 } as const;
export const SOCKET_TYPE_FLAGS = { SOCK_NONBLOCK: 0o4000, SOCK_CLOEXEC: 0o2000000 } as const;
export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;

export const FCNTL = { F_GETFD: 1, F_SETFD: 2, F_GETFL: 3, F_SETFL: 4, FD_CLOEXEC: 1, F_DUPFD_CLOEXEC: 1030 } as const;
/** madvise(2) advice: a mapping left out of forked children (V8 marks its heap so), and copied again. */
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const WNOHANG = 1;
export const CLOSE_RANGE_FLAGS = { CLOSE_RANGE_UNSHARE: 2, CLOSE_RANGE_CLOEXEC: 4 } as const;

export const IOCTL = {
  TIOCSCTTY: 0x540e,
  TIOCSTI: 0x5412,
  TIOCNOTTY: 0x5422,
  SIOCGIFFLAGS: 0x8913,
  SIOCSIFFLAGS: 0x8914,
} as const;
export const IFF_UP = 0x1;
export const IFNAMSIZ = 16;

/** keyctl(2) operations and the special keyring IDs. */
export const KEYCTL = { JOIN_SESSION_KEYRING: 1, CLEAR: 7, SEARCH: 10, INVALIDATE: 21 } as const;
export const KEY_SPEC = { THREAD: -1, PROCESS: -2, SESSION: -3, USER: -4, USER_SESSION: -5 } as const;

/** Signals the kernel numbers 1..64 on x86_64; SIGKILL and SIGSTOP keep their disposition. */
export const SIGNALS = { SIGKILL: 9, SIGSTOP: 19, LAST: 64 } as const;
export const SIG_SETMASK = 2;
/** The kernel's sigset_t: 64 bits (rt_sigaction/rt_sigprocmask take its size). */
export const KERNEL_SIGSET_BYTES = 8;
