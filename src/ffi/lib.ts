// koffi, and libc as one typed table: every libc function and struct the FFI layer uses is
// declared here, once, when libc is first needed. Declaring them all at once (1-2 ms) means a
// forked child (src/runtime/zygote.ts) only calls functions its parent already declared.
import { createRequire } from 'node:module';
import { assertSupportedArch, IFNAMSIZ } from './arch.js';
import { SyscallError } from './errors.js';

// koffi's CommonJS build: its ES module entry imports node:fs, node:util and node:module as ES
// modules, whose facades cost start-up time that init pays on every build. In the init bundle
// (scripts/bundle-init.mjs) import.meta.url is the bundle's own URL: koffi resolves from either.
const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');

/** A C string argument: a JS string, or bytes ending in NUL (a file name that is not UTF-8). */
type CString = string | Buffer;
/** What syscall(2), prctl(2), open(2)… take after their fixed arguments: C type, value, C type, value… */
type Variadic = unknown[];

/** struct statx: its layout is the same on every architecture (256 bytes, spare space included). */
export interface StatxStruct {
  stx_nlink: number;
  stx_uid: number;
  stx_gid: number;
  stx_mode: number;
  stx_ino: number | bigint;
  stx_size: number | bigint;
  stx_dev_major: number;
  stx_dev_minor: number;
}

/** struct rlimit; RLIM_INFINITY does not fit a number, so it is a bigint. */
interface RlimitStruct {
  rlim_cur: number | bigint;
  rlim_max: number | bigint;
}

export interface UcredStruct {
  pid: number;
  uid: number;
  gid: number;
}

export interface PasswdStruct {
  pw_name: string | null;
  pw_uid: number;
  pw_gid: number;
  pw_gecos: string | null;
  pw_dir: string | null;
  pw_shell: string | null;
}

export interface GroupStruct {
  gr_name: string | null;
  gr_gid: number;
  /** A NULL-terminated char **, left a pointer: koffi cannot size it by itself. */
  gr_mem: bigint | null;
}

/** struct ifreq with the flags member of its union (SIOCGIFFLAGS, SIOCSIFFLAGS). */
export interface IfreqFlags {
  ifr_name: string;
  ifr_flags: number;
}

export interface Timespec {
  tv_sec: number;
  tv_nsec: number;
}

/** Out-parameters koffi fills: pass `{}` and read the fields after the call. */
type Out<T> = Partial<T>;
/** A `T **result` out-parameter: a one-element array koffi sets to the pointer (null when none). */
type PointerOut = [unknown];

/** The libc functions Stockade calls; each returns what C returns (-1 and errno on failure). */
export interface Libc {
  strerror(errnum: number): string;
  syscall(number: number, ...args: Variadic): number | bigint;
  // processes, sessions, signals
  fork(): number;
  _exit(status: number): void;
  getpid(): number;
  kill(pid: number, signal: number): number;
  waitpid(pid: number, status: Int32Array, options: number): number;
  setsid(): number;
  prctl(option: number, ...args: Variadic): number;
  personality(persona: number): number;
  prlimit(pid: number, resource: number, newLimit: RlimitStruct | null, oldLimit: Out<RlimitStruct> | null): number;
  madvise(address: number, length: number, advice: number): number;
  execve(path: string, argv: (string | null)[], envp: (string | null)[]): number;
  /** Fault injection only (zygote tests): strlen(NULL) is a real memory fault, pause() a hang. */
  strlen(s: null): number;
  pause(): number;
  // namespaces, mounts, root, names
  unshare(flags: number): number;
  setns(fd: number, nstype: number): number;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  chdir(path: string): number;
  fchdir(fd: number): number;
  sethostname(name: string, length: number): number;
  setdomainname(name: string, length: number): number;
  // identity
  setgroups(size: number, list: Uint32Array): number;
  setresuid(real: number, effective: number, saved: number): number;
  setresgid(real: number, effective: number, saved: number): number;
  getresuid(real: Uint32Array, effective: Uint32Array, saved: Uint32Array): number;
  getresgid(real: Uint32Array, effective: Uint32Array, saved: Uint32Array): number;
  // file descriptors
  open(path: string, flags: number, ...mode: Variadic): number;
  close(fd: number): number;
  close_range(first: number, last: number, flags: number): number;
  fcntl(fd: number, cmd: number, ...arg: Variadic): number;
  pipe2(fds: Int32Array, flags: number): number;
  dup3(oldFd: number, newFd: number, flags: number): number;
  read(fd: number, buffer: Buffer, count: number): number | bigint;
  flock(fd: number, operation: number): number;
  poll(fds: Buffer, count: number, timeoutMs: number): number;
  ioctl(fd: number, request: number, ...arg: Variadic): number;
  memfd_create(name: string, flags: number): number;
  // files, through directory fds
  openat(dirfd: number, path: CString, flags: number, ...mode: Variadic): number;
  unlinkat(dirfd: number, path: CString, flags: number): number;
  mkdirat(dirfd: number, path: string, mode: number): number;
  renameat2(oldDirfd: number, oldPath: CString, newDirfd: number, newPath: string, flags: number): number;
  statx(dirfd: number, path: CString, flags: number, mask: number, buf: Out<StatxStruct>): number;
  readlinkat(dirfd: number, path: string, buf: Buffer, size: number): number | bigint;
  symlinkat(target: Buffer, dirfd: number, path: string): number;
  chmod(path: string, mode: number): number;
  mknod(path: string, mode: number, dev: bigint): number;
  fchmod(fd: number, mode: number): number;
  fchown(fd: number, uid: number, gid: number): number;
  fchownat(dirfd: number, path: CString, uid: number, gid: number, flags: number): number;
  utimensat(dirfd: number, path: string, times: [Timespec, Timespec], flags: number): number;
  futimens(fd: number, times: [Timespec, Timespec]): number;
  lseek(fd: number, offset: number, whence: number): number | bigint;
  ftruncate(fd: number, length: number): number;
  copy_file_range(inFd: number, inOffset: BigInt64Array, outFd: number, outOffset: BigInt64Array, length: number, flags: number): number | bigint;
  sendfile(outFd: number, inFd: number, offset: BigInt64Array, count: number): number | bigint;
  flistxattr(fd: number, list: Buffer | null, size: number): number | bigint;
  fremovexattr(fd: number, name: string): number;
  // sockets
  socket(domain: number, type: number, protocol: number): number;
  getsockopt(fd: number, level: number, name: number, value: Out<UcredStruct>, length: Uint32Array): number;
  // accounts (NSS): these return an errno instead of setting it
  getpwnam_r(name: string, pwd: Out<PasswdStruct>, buf: Buffer, buflen: number, result: PointerOut): number;
  getpwuid_r(uid: number, pwd: Out<PasswdStruct>, buf: Buffer, buflen: number, result: PointerOut): number;
  getgrnam_r(name: string, grp: Out<GroupStruct>, buf: Buffer, buflen: number, result: PointerOut): number;
  getgrgid_r(gid: number, grp: Out<GroupStruct>, buf: Buffer, buflen: number, result: PointerOut): number;
  getgrouplist(user: string, group: number, groups: Uint32Array, ngroups: Int32Array): number;
}

/** Pointers to the structs passed through syscall(2)'s variadic arguments: the C type to give there. */
export const STRUCT_POINTER = {
  openHow: 'stockade_open_how *',
  mountAttr: 'stockade_mount_attr *',
  landlockRulesetAttr: 'stockade_landlock_ruleset_attr *',
  landlockPathBeneathAttr: 'stockade_landlock_path_beneath_attr *',
  landlockNetPortAttr: 'stockade_landlock_net_port_attr *',
  kernelSigaction: 'stockade_kernel_sigaction *',
} as const;

/** sizeof the struct a STRUCT_POINTER points to, for the calls that take the size too. */
export function structSize(pointer: (typeof STRUCT_POINTER)[keyof typeof STRUCT_POINTER]): number {
  libc();
  return koffi.sizeof(pointer.slice(0, -2));
}

function declareStructs(): void {
  const timestamp = koffi.struct('stockade_statx_timestamp', { tv_sec: 'int64_t', tv_nsec: 'uint32_t', reserved: 'int32_t' });
  koffi.struct('stockade_statx', {
    stx_mask: 'uint32_t',
    stx_blksize: 'uint32_t',
    stx_attributes: 'uint64_t',
    stx_nlink: 'uint32_t',
    stx_uid: 'uint32_t',
    stx_gid: 'uint32_t',
    stx_mode: 'uint16_t',
    spare0: 'uint16_t',
    stx_ino: 'uint64_t',
    stx_size: 'uint64_t',
    stx_blocks: 'uint64_t',
    stx_attributes_mask: 'uint64_t',
    stx_atime: timestamp,
    stx_btime: timestamp,
    stx_ctime: timestamp,
    stx_mtime: timestamp,
    stx_rdev_major: 'uint32_t',
    stx_rdev_minor: 'uint32_t',
    stx_dev_major: 'uint32_t',
    stx_dev_minor: 'uint32_t',
    // The kernel writes all 256 bytes: fields newer than these, then spare space.
    rest: koffi.array('uint64_t', 14),
  });
  koffi.struct('stockade_timespec', { tv_sec: 'int64_t', tv_nsec: 'int64_t' });
  koffi.struct('stockade_rlimit', { rlim_cur: 'uint64_t', rlim_max: 'uint64_t' });
  koffi.struct('stockade_ucred', { pid: 'int32_t', uid: 'uint32_t', gid: 'uint32_t' });
  koffi.struct('stockade_passwd', {
    pw_name: 'char *',
    pw_passwd: 'char *',
    pw_uid: 'uint32_t',
    pw_gid: 'uint32_t',
    pw_gecos: 'char *',
    pw_dir: 'char *',
    pw_shell: 'char *',
  });
  koffi.struct('stockade_group', { gr_name: 'char *', gr_passwd: 'char *', gr_gid: 'uint32_t', gr_mem: 'void *' });
  koffi.struct('stockade_open_how', { flags: 'uint64_t', mode: 'uint64_t', resolve: 'uint64_t' });
  koffi.struct('stockade_mount_attr', { attr_set: 'uint64_t', attr_clr: 'uint64_t', propagation: 'uint64_t', userns_fd: 'uint64_t' });
  koffi.struct('stockade_landlock_ruleset_attr', { handled_access_fs: 'uint64_t', handled_access_net: 'uint64_t', scoped: 'uint64_t' });
  koffi.pack('stockade_landlock_path_beneath_attr', { allowed_access: 'uint64_t', parent_fd: 'int32_t' });
  koffi.struct('stockade_landlock_net_port_attr', { allowed_access: 'uint64_t', port: 'uint64_t' });
  // ifr_flags, a short in C read here as the bit set it is, is a member of a 24-byte union (struct ifmap's size).
  koffi.struct('stockade_ifreq', { ifr_name: koffi.array('char', IFNAMSIZ), ifr_flags: 'uint16_t', rest: koffi.array('uint8_t', 22) });
  koffi.struct('stockade_kernel_sigaction', { handler: 'uintptr_t', flags: 'unsigned long', restorer: 'uintptr_t', mask: 'uint64_t' });
}

const PROTOTYPES: Record<keyof Libc, string> = {
  strerror: 'const char *strerror(int errnum)',
  syscall: 'long syscall(long number, ...)',
  fork: 'int fork(void)',
  _exit: 'void _exit(int status)',
  getpid: 'int getpid(void)',
  kill: 'int kill(int pid, int sig)',
  waitpid: 'int waitpid(int pid, void *status, int options)',
  setsid: 'int setsid(void)',
  prctl: 'int prctl(int option, ...)',
  personality: 'int personality(unsigned long persona)',
  prlimit: 'int prlimit(int pid, int resource, const stockade_rlimit *newLimit, _Out_ stockade_rlimit *oldLimit)',
  madvise: 'int madvise(uintptr_t addr, size_t length, int advice)',
  execve: 'int execve(const char *path, const char **argv, const char **envp)',
  strlen: 'size_t strlen(void *s)',
  pause: 'int pause(void)',
  unshare: 'int unshare(int flags)',
  setns: 'int setns(int fd, int nstype)',
  mount: 'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
  umount2: 'int umount2(const char *target, int flags)',
  chdir: 'int chdir(const char *path)',
  fchdir: 'int fchdir(int fd)',
  sethostname: 'int sethostname(const char *name, size_t len)',
  setdomainname: 'int setdomainname(const char *name, size_t len)',
  setgroups: 'int setgroups(size_t size, const uint32_t *list)',
  setresuid: 'int setresuid(int ruid, int euid, int suid)',
  setresgid: 'int setresgid(int rgid, int egid, int sgid)',
  getresuid: 'int getresuid(void *r, void *e, void *s)',
  getresgid: 'int getresgid(void *r, void *e, void *s)',
  open: 'int open(const char *path, int flags, ...)',
  close: 'int close(int fd)',
  close_range: 'int close_range(unsigned int first, unsigned int last, int flags)',
  fcntl: 'int fcntl(int fd, int cmd, ...)',
  pipe2: 'int pipe2(void *fds, int flags)',
  dup3: 'int dup3(int oldfd, int newfd, int flags)',
  read: 'long read(int fd, void *buf, size_t count)',
  flock: 'int flock(int fd, int operation)',
  poll: 'int poll(void *fds, unsigned long nfds, int timeout)',
  ioctl: 'int ioctl(int fd, unsigned long request, ...)',
  memfd_create: 'int memfd_create(const char *name, unsigned int flags)',
  openat: 'int openat(int dirfd, const char *path, int flags, ...)',
  unlinkat: 'int unlinkat(int dirfd, const char *path, int flags)',
  mkdirat: 'int mkdirat(int dirfd, const char *path, uint32_t mode)',
  renameat2: 'int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)',
  statx: 'int statx(int dirfd, const char *path, int flags, unsigned int mask, _Out_ stockade_statx *buf)',
  readlinkat: 'long readlinkat(int dirfd, const char *path, _Out_ uint8_t *buf, size_t size)',
  symlinkat: 'int symlinkat(const uint8_t *target, int dirfd, const char *path)',
  chmod: 'int chmod(const char *path, uint32_t mode)',
  mknod: 'int mknod(const char *path, uint32_t mode, uint64_t dev)',
  fchmod: 'int fchmod(int fd, uint32_t mode)',
  fchown: 'int fchown(int fd, uint32_t uid, uint32_t gid)',
  fchownat: 'int fchownat(int dirfd, const char *path, uint32_t uid, uint32_t gid, int flags)',
  utimensat: 'int utimensat(int dirfd, const char *path, const stockade_timespec *times, int flags)',
  futimens: 'int futimens(int fd, const stockade_timespec *times)',
  lseek: 'int64_t lseek(int fd, int64_t offset, int whence)',
  ftruncate: 'int ftruncate(int fd, int64_t length)',
  copy_file_range: 'long copy_file_range(int fd_in, void *off_in, int fd_out, void *off_out, size_t len, unsigned int flags)',
  sendfile: 'long sendfile(int out_fd, int in_fd, void *offset, size_t count)',
  flistxattr: 'long flistxattr(int fd, _Out_ uint8_t *list, size_t size)',
  fremovexattr: 'int fremovexattr(int fd, const char *name)',
  socket: 'int socket(int domain, int type, int protocol)',
  getsockopt: 'int getsockopt(int fd, int level, int name, _Out_ stockade_ucred *value, _Inout_ uint32_t *length)',
  getpwnam_r: 'int getpwnam_r(const char *name, _Out_ stockade_passwd *pwd, void *buf, size_t buflen, _Out_ void **result)',
  getpwuid_r: 'int getpwuid_r(uint32_t uid, _Out_ stockade_passwd *pwd, void *buf, size_t buflen, _Out_ void **result)',
  getgrnam_r: 'int getgrnam_r(const char *name, _Out_ stockade_group *grp, void *buf, size_t buflen, _Out_ void **result)',
  getgrgid_r: 'int getgrgid_r(uint32_t gid, _Out_ stockade_group *grp, void *buf, size_t buflen, _Out_ void **result)',
  getgrouplist: 'int getgrouplist(const char *user, uint32_t group, _Inout_ uint32_t *groups, _Inout_ int *ngroups)',
};

let table: Libc | undefined;

/** libc, loaded and declared on first use. */
export function libc(): Libc {
  if (!table) {
    assertSupportedArch();
    const lib = koffi.load('libc.so.6');
    declareStructs();
    const declared: Record<string, unknown> = {};
    for (const [name, prototype] of Object.entries(PROTOTYPES)) declared[name] = lib.func(prototype);
    table = declared as unknown as Libc;
  }
  return table;
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
    throw new SyscallError(call, describe(), errno, libc().strerror(errno));
  }
  return result;
}

/** Throws a SyscallError for a call that reports failure through its return value (pthread style). */
export function fail(call: string, args: string, errno: number): never {
  throw new SyscallError(call, args, errno, libc().strerror(errno));
}

export { koffi };
