// Thin, typed libc wrappers. Each one throws a SyscallError naming the call and its arguments;
// none returns -1. Namespace calls act on the calling thread only (docs/architecture.md).
import { readdirSync } from 'node:fs';
import { check, fail, lastErrno, loadLibc, koffi } from './lib.js';
import { quote, renderEnum, renderFlags, renderMode } from './errors.js';
import {
  AT_FDCWD,
  CLONE_FLAGS,
  CLOSE_RANGE_FLAGS,
  ERRNO,
  FCNTL,
  FILE_TYPE,
  KERNEL_SIGSET_BYTES,
  KEYCTL,
  KEY_SPEC,
  IOCTL,
  MOUNT_FLAGS,
  OPEN_FLAGS,
  PERSONALITY,
  PERSONALITY_QUERY,
  PRCTL,
  PR_CAP_AMBIENT_CLEAR_ALL,
  RLIMIT,
  RLIM_INFINITY,
  SOCKET_DOMAINS,
  SOCKET_TYPES,
  SOCKET_TYPE_FLAGS,
  SOL_SOCKET,
  SO_PEERCRED,
  SIG_SETMASK,
  SYS,
  UMOUNT_FLAGS,
  WNOHANG,
} from './arch.js';

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
  check(libcFn('int flock(int fd, int operation)')(fd, operation), 'flock', () => `${fd}, ${renderFlags(operation, LOCK_FLAGS)}`);
}

export function kill(pid: number, signal: number): void {
  check(libcFn('int kill(int pid, int sig)')(pid, signal), 'kill', () => `${pid}, ${signal}`);
}

// ---- namespaces, mounts, root ----

export function unshare(flags: number): void {
  check(libcFn('int unshare(int flags)')(flags), 'unshare', () => renderFlags(flags, CLONE_FLAGS));
}

/** Joins the namespace `fd` refers to; `nstype` is 0 (any) or one CLONE_NEW* flag. */
export function setns(fd: number, nstype: number): void {
  check(libcFn('int setns(int fd, int nstype)')(fd, nstype), 'setns', () => `${fd}, ${renderFlags(nstype, CLONE_FLAGS)}`);
}

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  const fn = libcFn('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)');
  check(fn(source, target, fstype, flags, data), 'mount', () => {
    const parts = [`${quote(source)} -> ${quote(target)}`];
    if (fstype !== null) parts.push(quote(fstype));
    parts.push(renderFlags(flags, MOUNT_FLAGS));
    if (data !== null) parts.push(quote(data));
    return parts.join(', ');
  });
}

export function umount2(target: string, flags: number): void {
  check(libcFn('int umount2(const char *target, int flags)')(target, flags), 'umount2', () => `${quote(target)}, ${renderFlags(flags, UMOUNT_FLAGS)}`);
}

/** pivot_root(2) has no glibc wrapper: it goes through syscall(2). */
export function pivotRoot(newRoot: string, putOld: string): void {
  const result = libcFn('long syscall(long number, ...)')(SYS.pivot_root, 'const char *', newRoot, 'const char *', putOld);
  check(result as number, 'pivot_root', () => `${quote(newRoot)}, ${quote(putOld)}`);
}

/** open_tree(2) flags; OPEN_TREE_CLOEXEC is O_CLOEXEC. */
export const OPEN_TREE = { OPEN_TREE_CLONE: 1, AT_EMPTY_PATH: 0x1000, AT_RECURSIVE: 0x8000, OPEN_TREE_CLOEXEC: 0o2000000 } as const;
export const MOVE_MOUNT = { MOVE_MOUNT_F_EMPTY_PATH: 0x4, MOVE_MOUNT_T_EMPTY_PATH: 0x40 } as const;
export const MOUNT_ATTR = { MOUNT_ATTR_RDONLY: 0x1, MOUNT_ATTR_NOSUID: 0x2, MOUNT_ATTR_NODEV: 0x4, MOUNT_ATTR_NOEXEC: 0x8 } as const;

function dirfdLabel(dirfd: number): string {
  return dirfd === AT_FDCWD ? 'AT_FDCWD' : String(dirfd);
}

/** open_tree(2): with OPEN_TREE_CLONE, a detached copy of the mount at `path` (a bind not yet attached anywhere). */
export function openTree(dirfd: number, path: string, flags: number): number {
  const fd = Number(libcFn('long syscall(long number, ...)')(SYS.open_tree, 'int', dirfd, 'const char *', path, 'unsigned int', flags));
  return check(fd, 'open_tree', () => `${dirfdLabel(dirfd)}, ${quote(path)}, ${renderFlags(flags, OPEN_TREE)}`);
}

/** move_mount(2): attaches the mount `fromPath` (beneath fromDirfd) at `toPath` (beneath toDirfd). */
export function moveMount(fromDirfd: number, fromPath: string, toDirfd: number, toPath: string, flags: number): void {
  const result = Number(libcFn('long syscall(long number, ...)')(SYS.move_mount, 'int', fromDirfd, 'const char *', fromPath, 'int', toDirfd, 'const char *', toPath, 'unsigned int', flags));
  check(result, 'move_mount', () => `${dirfdLabel(fromDirfd)}, ${quote(fromPath)}, ${dirfdLabel(toDirfd)}, ${quote(toPath)}, ${renderFlags(flags, MOVE_MOUNT)}`);
}

/**
 * mount_setattr(2): sets `set` and clears `clear` (MOUNT_ATTR_*) on the mount at `path` beneath
 * dirfd, and changes its propagation when `propagation` (MS_PRIVATE, MS_SLAVE...) is not 0.
 */
export function mountSetattr(dirfd: number, path: string, flags: number, set: number, clear: number, propagation = 0): void {
  const attr = Buffer.alloc(32);
  attr.writeBigUInt64LE(BigInt(set), 0);
  attr.writeBigUInt64LE(BigInt(clear), 8);
  attr.writeBigUInt64LE(BigInt(propagation), 16);
  const result = Number(libcFn('long syscall(long number, ...)')(SYS.mount_setattr, 'int', dirfd, 'const char *', path, 'unsigned int', flags, 'void *', attr, 'size_t', attr.length));
  check(result, 'mount_setattr', () => `${dirfdLabel(dirfd)}, ${quote(path)}, ${renderFlags(flags, OPEN_TREE)}, {set ${renderFlags(set, MOUNT_ATTR)}, clear ${renderFlags(clear, MOUNT_ATTR)}, propagation ${renderFlags(propagation, MOUNT_FLAGS)}}`);
}

export function fchdir(fd: number): void {
  check(libcFn('int fchdir(int fd)')(fd), 'fchdir', () => String(fd));
}

export function chdir(path: string): void {
  check(libcFn('int chdir(const char *path)')(path), 'chdir', () => quote(path));
}

export function chroot(path: string): void {
  check(libcFn('int chroot(const char *path)')(path), 'chroot', () => quote(path));
}

export function mkdir(path: string, mode: number): void {
  check(libcFn('int mkdir(const char *path, uint32_t mode)')(path, mode), 'mkdir', () => `${quote(path)}, ${renderMode(mode)}`);
}

/** The dev_t of a device number pair, as glibc's makedev() builds it. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return (mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n);
}

/** `mode` holds the file type (S_IFCHR, S_IFBLK, S_IFIFO…) and the permission bits. */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  const fn = libcFn('int mknod(const char *path, uint32_t mode, uint64_t dev)');
  check(fn(path, mode, makedev(major, minor)), 'mknod', () => {
    const type = renderEnum(mode & 0o170000, FILE_TYPE);
    return `${quote(path)}, ${type}|${renderMode(mode & 0o7777)}, ${major}:${minor}`;
  });
}

export function chmod(path: string, mode: number): void {
  check(libcFn('int chmod(const char *path, uint32_t mode)')(path, mode), 'chmod', () => `${quote(path)}, ${renderMode(mode)}`);
}

/** open(2); `mode` is passed only with O_CREAT, as the variadic C prototype expects. Returns the fd. */
export function open(path: string, flags: number, mode?: number): number {
  const fn = libcFn('int open(const char *path, int flags, ...)');
  const fd = mode === undefined ? fn(path, flags) : fn(path, flags, 'uint32_t', mode);
  return check(fd as number, 'open', () => {
    // O_RDONLY is 0, so renderFlags alone cannot name it.
    const rendered =
      (flags & 3) !== 0 ? renderFlags(flags, OPEN_FLAGS) : flags === 0 ? 'O_RDONLY' : `O_RDONLY|${renderFlags(flags, OPEN_FLAGS)}`;
    return `${quote(path)}, ${rendered}${mode === undefined ? '' : ', ' + renderMode(mode)}`;
  });
}

export function close(fd: number): void {
  check(libcFn('int close(int fd)')(fd), 'close', () => String(fd));
}

// ---- host and domain names ----

export function sethostname(name: string): void {
  const bytes = Buffer.from(name);
  check(libcFn('int sethostname(const char *name, size_t len)')(name, bytes.length), 'sethostname', () => quote(name));
}

export function setdomainname(name: string): void {
  const bytes = Buffer.from(name);
  check(libcFn('int setdomainname(const char *name, size_t len)')(name, bytes.length), 'setdomainname', () => quote(name));
}

// ---- identity ----

export function setgroups(gids: readonly number[]): void {
  const list = Uint32Array.from(gids);
  check(libcFn('int setgroups(size_t size, const uint32_t *list)')(list.length, list), 'setgroups', () => `[${gids.join(', ')}]`);
}

/** -1 leaves an id unchanged, as in C. */
export function setresuid(real: number, effective: number, saved: number): void {
  check(libcFn('int setresuid(int ruid, int euid, int suid)')(real, effective, saved), 'setresuid', () => `${real}, ${effective}, ${saved}`);
}

export function setresgid(real: number, effective: number, saved: number): void {
  check(libcFn('int setresgid(int rgid, int egid, int sgid)')(real, effective, saved), 'setresgid', () => `${real}, ${effective}, ${saved}`);
}

export interface ResIds {
  real: number;
  effective: number;
  saved: number;
}

function getres(call: 'getresuid' | 'getresgid'): ResIds {
  const [real, effective, saved] = [new Uint32Array(1), new Uint32Array(1), new Uint32Array(1)];
  const fn = libcFn(`int ${call}(void *r, void *e, void *s)`);
  check(fn(real, effective, saved), call, () => '');
  return { real: real[0]!, effective: effective[0]!, saved: saved[0]! };
}

export function getresuid(): ResIds {
  return getres('getresuid');
}

export function getresgid(): ResIds {
  return getres('getresgid');
}

// ---- prctl ----

/** prctl(2) with up to four unsigned long arguments (glibc declares it variadic). */
export function prctl(option: number, ...args: (number | bigint)[]): number {
  const variadic = args.flatMap((a) => ['unsigned long', a]);
  const result = libcFn('int prctl(int option, ...)')(option, ...variadic) as number;
  return check(result, 'prctl', () => [renderEnum(option, PRCTL), ...args.map(String)].join(', '));
}

export function setNoNewPrivs(): void {
  prctl(PRCTL.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

export function getNoNewPrivs(): boolean {
  return prctl(PRCTL.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) === 1;
}

/** The signal the kernel sends this process when its parent thread dies (0 = none). */
export function setParentDeathSignal(signal: number): void {
  prctl(PRCTL.PR_SET_PDEATHSIG, signal);
}

export function setDumpable(dumpable: boolean): void {
  prctl(PRCTL.PR_SET_DUMPABLE, dumpable ? 1 : 0);
}

export function capBoundingDrop(cap: number): void {
  prctl(PRCTL.PR_CAPBSET_DROP, cap);
}

export function capBoundingRead(cap: number): boolean {
  return prctl(PRCTL.PR_CAPBSET_READ, cap) === 1;
}

export function capAmbientClearAll(): void {
  prctl(PRCTL.PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

// ---- limits, personality, session ----

export type RlimitValue = number | 'unlimited';

function rlimitResource(name: string): number {
  const resource = (RLIMIT as Record<string, number>)[name];
  if (resource === undefined) {
    throw new Error(`unknown rlimit '${name}' (known: ${Object.keys(RLIMIT).join(', ')})`);
  }
  return resource;
}

const toRlim = (v: RlimitValue): bigint => (v === 'unlimited' ? RLIM_INFINITY : BigInt(v));
const fromRlim = (v: bigint): RlimitValue => (v === RLIM_INFINITY ? 'unlimited' : Number(v));

/** Sets a resource limit of `pid` (0 = this process) by the Plan's name for it (core, nofile…). */
export function setRlimit(name: string, soft: RlimitValue, hard: RlimitValue, pid = 0): void {
  const resource = rlimitResource(name);
  const limit = Buffer.alloc(16);
  limit.writeBigUInt64LE(toRlim(soft), 0);
  limit.writeBigUInt64LE(toRlim(hard), 8);
  const fn = libcFn('int prlimit(int pid, int resource, const void *newLimit, void *oldLimit)');
  check(fn(pid, resource, limit, null), 'prlimit', () => `${pid}, RLIMIT_${name.toUpperCase()}, {${soft}, ${hard}}, NULL`);
}

export function getRlimit(name: string, pid = 0): { soft: RlimitValue; hard: RlimitValue } {
  const resource = rlimitResource(name);
  const limit = Buffer.alloc(16);
  const fn = libcFn('int prlimit(int pid, int resource, const void *newLimit, void *oldLimit)');
  check(fn(pid, resource, null, limit), 'prlimit', () => `${pid}, RLIMIT_${name.toUpperCase()}, NULL, {}`);
  return { soft: fromRlim(limit.readBigUInt64LE(0)), hard: fromRlim(limit.readBigUInt64LE(8)) };
}

/** Sets the personality from names (ADDR_NO_RANDOMIZE, PER_LINUX32…); returns the previous value. */
export function setPersonality(names: readonly string[]): number {
  let persona = 0;
  for (const name of names) {
    const bit = (PERSONALITY as Record<string, number>)[name];
    if (bit === undefined) throw new Error(`unknown personality '${name}' (known: ${Object.keys(PERSONALITY).join(', ')})`);
    persona |= bit;
  }
  return personalityCall(persona);
}

export function getPersonality(): number {
  return personalityCall(PERSONALITY_QUERY);
}

function personalityCall(persona: number): number {
  const result = libcFn('int personality(unsigned long persona)')(persona) as number;
  return check(result, 'personality', () => (persona === PERSONALITY_QUERY ? '0xffffffff' : renderFlags(persona, PERSONALITY)));
}

/** Starts a new session; returns its id. */
export function setsid(): number {
  return check(libcFn('int setsid(void)')() as number, 'setsid', () => '');
}

// ---- file descriptors ----

export function fcntl(fd: number, cmd: number, arg?: number): number {
  const fn = libcFn('int fcntl(int fd, int cmd, ...)');
  const result = (arg === undefined ? fn(fd, cmd) : fn(fd, cmd, 'int', arg)) as number;
  return check(result, 'fcntl', () => `${fd}, ${renderEnum(cmd, FCNTL)}${arg === undefined ? '' : ', ' + arg}`);
}

/** Lets `fd` survive execve (Node opens even stdio with FD_CLOEXEC). */
export function clearCloexec(fd: number): void {
  const flags = fcntl(fd, FCNTL.F_GETFD);
  if (flags & FCNTL.FD_CLOEXEC) fcntl(fd, FCNTL.F_SETFD, flags & ~FCNTL.FD_CLOEXEC);
}

/** Makes `fd` blocking again (Node may leave its stdio pipes O_NONBLOCK, which a builder inheriting them does not expect). */
export function clearNonblock(fd: number): void {
  const flags = fcntl(fd, FCNTL.F_GETFL);
  if (flags & OPEN_FLAGS.O_NONBLOCK) fcntl(fd, FCNTL.F_SETFL, flags & ~OPEN_FLAGS.O_NONBLOCK);
}

export function getCloexec(fd: number): boolean {
  return (fcntl(fd, FCNTL.F_GETFD) & FCNTL.FD_CLOEXEC) !== 0;
}

const MAX_FD = 0xffffffff;

/**
 * Closes every fd in [first, last]. Kernels without close_range(2) (ENOSYS) get a loop over
 * /proc/self/fd instead. Only for the moment before execve: it also closes libuv's own fds.
 */
export function closeRange(first: number, last = MAX_FD, flags = 0): void {
  const result = libcFn('int close_range(unsigned int first, unsigned int last, int flags)')(first, last, flags) as number;
  if (result === 0) return;
  const errno = lastErrno();
  if (errno === ERRNO.ENOSYS && flags === 0) {
    for (const name of readdirSync('/proc/self/fd')) {
      const fd = Number(name);
      if (fd < first || fd > last) continue;
      // The directory fd readdirSync used is already closed; EBADF for it is expected.
      const closed = libcFn('int close(int fd)')(fd) as number;
      if (closed < 0 && lastErrno() !== ERRNO.EBADF) check(closed, 'close', () => String(fd));
    }
    return;
  }
  check(result, 'close_range', () => `${first}, ${last === MAX_FD ? '~0U' : last}, ${renderFlags(flags, CLOSE_RANGE_FLAGS)}`);
}

/** Replaces this process image. Never returns: on failure it throws. */
export function execve(path: string, argv: readonly string[], env: Readonly<Record<string, string>> | readonly string[]): never {
  const envp = Array.isArray(env) ? [...env] : Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const fn = libcFn('int execve(const char *path, const char **argv, const char **envp)');
  const result = fn(path, [...argv, null], [...envp, null]) as number;
  check(result, 'execve', () => `${quote(path)}, [${argv.map(quote).join(', ')}], [${envp.length} vars]`);
  // execve returns only on failure, which check() has thrown for.
  throw new Error(`execve(${quote(path)}) returned ${result}`);
}

// ---- sockets ----

export function socket(domain: number, type: number, protocol = 0): number {
  const fd = libcFn('int socket(int domain, int type, int protocol)')(domain, type, protocol) as number;
  return check(fd, 'socket', () => {
    const base = renderEnum(type & 0xf, SOCKET_TYPES);
    const extra = type & ~0xf ? '|' + renderFlags(type & ~0xf, SOCKET_TYPE_FLAGS) : '';
    return `${renderEnum(domain, SOCKET_DOMAINS)}, ${base}${extra}, ${protocol}`;
  });
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/** The credentials of the process at the other end of a unix socket. */
export function getPeerCred(fd: number): PeerCred {
  const cred = Buffer.alloc(12);
  const length = new Uint32Array([cred.length]);
  const fn = libcFn('int getsockopt(int fd, int level, int name, void *value, uint32_t *length)');
  check(fn(fd, SOL_SOCKET, SO_PEERCRED, cred, length), 'getsockopt', () => `${fd}, SOL_SOCKET, SO_PEERCRED`);
  return { pid: cred.readInt32LE(0), uid: cred.readUInt32LE(4), gid: cred.readUInt32LE(8) };
}

// ---- ioctl ----

/** ioctl(2) with a pointer argument (a Buffer the kernel reads or fills). */
export function ioctlPointer(fd: number, request: number, arg: Buffer | null, describe: () => string): number {
  const result = libcFn('int ioctl(int fd, unsigned long request, ...)')(fd, request, 'void *', arg) as number;
  return check(result, 'ioctl', () => `${fd}, ${renderEnum(request, IOCTL)}, ${describe()}`);
}

/** ioctl(2) with an integer argument. */
export function ioctlInt(fd: number, request: number, arg: number): number {
  const result = libcFn('int ioctl(int fd, unsigned long request, ...)')(fd, request, 'int', arg) as number;
  return check(result, 'ioctl', () => `${fd}, ${renderEnum(request, IOCTL)}, ${arg}`);
}

/** Makes the terminal on `fd` the controlling tty (a probe: a sandboxed build must not get one). */
export function setControllingTty(fd: number, steal = false): void {
  ioctlInt(fd, IOCTL.TIOCSCTTY, steal ? 1 : 0);
}

/** Pushes one byte into the terminal's input queue (a probe: TIOCSTI must be refused in a sandbox). */
export function injectTtyInput(fd: number, byte: string): void {
  const data = Buffer.from(byte.slice(0, 1));
  ioctlPointer(fd, IOCTL.TIOCSTI, data, () => quote(byte.slice(0, 1)));
}

// ---- keyrings ----

function keyctl(operation: number, describe: () => string, ...args: SyscallArg[]): number {
  const { result, errno } = rawSyscall(SYS.keyctl, operation, ...args);
  if (result === -1) fail('keyctl', describe(), errno);
  return result;
}

/** Puts the calling thread in a new anonymous session keyring (KEYCTL_JOIN_SESSION_KEYRING, NULL); returns its serial. */
export function joinNewSessionKeyring(): number {
  return keyctl(KEYCTL.JOIN_SESSION_KEYRING, () => 'KEYCTL_JOIN_SESSION_KEYRING, NULL', null);
}

/** Unlinks every key from a keyring (KEYCTL_CLEAR); `keyring` is a serial or a KEY_SPEC value. */
export function clearKeyring(keyring: number): void {
  const name = Object.entries(KEY_SPEC).find(([, v]) => v === keyring)?.[0];
  keyctl(KEYCTL.CLEAR, () => `KEYCTL_CLEAR, ${name ? `KEY_SPEC_${name}_KEYRING` : keyring}`, keyring);
}

// ---- signals ----

/** Sets `signal`'s disposition to SIG_DFL (the kernel's struct sigaction: handler 0, no flags, empty mask). */
export function setDefaultSignalAction(signal: number): void {
  const { result, errno } = rawSyscall(SYS.rt_sigaction, signal, Buffer.alloc(32), null, KERNEL_SIGSET_BYTES);
  if (result === -1) fail('rt_sigaction', `${signal}, SIG_DFL`, errno);
}

/** Replaces the calling thread's signal mask (bit n-1 = signal n). */
export function setSignalMask(mask: bigint): void {
  const set = Buffer.alloc(KERNEL_SIGSET_BYTES);
  set.writeBigUInt64LE(mask);
  const { result, errno } = rawSyscall(SYS.rt_sigprocmask, SIG_SETMASK, set, null, KERNEL_SIGSET_BYTES);
  if (result === -1) fail('rt_sigprocmask', `SIG_SETMASK, 0x${mask.toString(16)}`, errno);
}

// ---- processes (the forked init, src/runtime/zygote.ts) ----

export function getpid(): number {
  return libcFn('int getpid(void)')() as number;
}

/** libc fork(2): its atfork handlers keep malloc usable in the child. Returns 0 in the child. */
export function fork(): number {
  return check(libcFn('int fork(void)')() as number, 'fork', () => '');
}

/** Ends the process at once: no exit handlers, no flushing of anything the parent also holds. */
export function exitNow(status: number): never {
  libcFn('void _exit(int status)')(status);
  throw new Error('_exit returned');
}

export function madvise(address: number, length: number, advice: number): void {
  check(libcFn('int madvise(uintptr_t addr, size_t length, int advice)')(address, length, advice) as number, 'madvise', () => `0x${address.toString(16)}, ${length}, ${advice}`);
}

/** waitpid(2); `undefined` when WNOHANG and the child still runs, else its raw wait status. */
export function waitpid(pid: number, options = 0): number | undefined {
  const status = new Int32Array(1);
  const result = check(libcFn('int waitpid(int pid, void *status, int options)')(pid, status, options) as number, 'waitpid', () => `${pid}, ${renderFlags(options, { WNOHANG })}`);
  return result === 0 ? undefined : status[0]!;
}

/** pipe2(2): [read end, write end]. */
export function pipe2(flags: number): [number, number] {
  const fds = new Int32Array(2);
  check(libcFn('int pipe2(void *fds, int flags)')(fds, flags) as number, 'pipe2', () => renderFlags(flags, OPEN_FLAGS));
  return [fds[0]!, fds[1]!];
}

export function dup3(oldFd: number, newFd: number, flags: number): void {
  check(libcFn('int dup3(int oldfd, int newfd, int flags)')(oldFd, newFd, flags) as number, 'dup3', () => `${oldFd}, ${newFd}, ${renderFlags(flags, OPEN_FLAGS)}`);
}

/** read(2) into `buffer`; returns the byte count (0 at end of file). */
export function read(fd: number, buffer: Buffer): number {
  return check(Number(libcFn('long read(int fd, void *buf, size_t count)')(fd, buffer, buffer.length)), 'read', () => `${fd}, ${buffer.length}`);
}

// ---- raw syscalls ----

export type SyscallArg = number | bigint | string | Buffer | null;

export interface SyscallResult {
  result: number;
  /** errno when result is -1, 0 otherwise. */
  errno: number;
}

/**
 * syscall(2) for probes: returns the raw result and errno instead of throwing, because the
 * caller wants to tell "refused by the policy" from "reached the kernel".
 */
export function rawSyscall(number: number, ...args: SyscallArg[]): SyscallResult {
  const variadic = args.flatMap((a): [string, SyscallArg] => {
    if (typeof a === 'string') return ['const char *', a];
    if (a === null || Buffer.isBuffer(a)) return ['void *', a];
    return ['long', a];
  });
  koffi.errno(0);
  const result = Number(libcFn('long syscall(long number, ...)')(number, ...variadic));
  return { result, errno: result === -1 ? lastErrno() : 0 };
}

export { koffi };
