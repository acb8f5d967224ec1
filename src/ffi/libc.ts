// Thin, typed libc wrappers. Each one throws a SyscallError naming the call and its arguments;
// none returns -1. Namespace calls act on the calling thread only (docs/architecture.md).
import { readdirSync } from 'node:fs';
import { check, koffi, lastErrno, libc, STRUCT_POINTER, structSize, type UcredStruct } from './lib.js';
import { quote, renderEnum, renderFlags, renderMode } from './errors.js';
import {
  AT_FDCWD,
  CLONE_FLAGS,
  CLOSE_RANGE_FLAGS,
  ERRNO,
  FCNTL,
  KERNEL_SIGSET_BYTES,
  KEYCTL,
  KEY_SPEC,
  IOCTL,
  MOUNT_FLAGS,
  OPEN_FLAGS,
  PERSONALITY,
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

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
const LOCK_FLAGS = { LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN };

export function flock(fd: number, operation: number): void {
  check(libc().flock(fd, operation), 'flock', () => `${fd}, ${renderFlags(operation, LOCK_FLAGS)}`);
}

export function kill(pid: number, signal: number): void {
  check(libc().kill(pid, signal), 'kill', () => `${pid}, ${signal}`);
}

// ---- namespaces, mounts, root ----

export function unshare(flags: number): void {
  check(libc().unshare(flags), 'unshare', () => renderFlags(flags, CLONE_FLAGS));
}

/** Joins the namespace `fd` refers to; `nstype` is 0 (any) or one CLONE_NEW* flag. */
export function setns(fd: number, nstype: number): void {
  check(libc().setns(fd, nstype), 'setns', () => `${fd}, ${renderFlags(nstype, CLONE_FLAGS)}`);
}

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  check(libc().mount(source, target, fstype, flags, data), 'mount', () => {
    const parts = [`${quote(source)} -> ${quote(target)}`];
    if (fstype !== null) parts.push(quote(fstype));
    parts.push(renderFlags(flags, MOUNT_FLAGS));
    if (data !== null) parts.push(quote(data));
    return parts.join(', ');
  });
}

export function umount2(target: string, flags: number): void {
  check(libc().umount2(target, flags), 'umount2', () => `${quote(target)}, ${renderFlags(flags, UMOUNT_FLAGS)}`);
}

/** pivot_root(2) has no glibc wrapper: it goes through syscall(2). */
export function pivotRoot(newRoot: string, putOld: string): void {
  const result = Number(libc().syscall(SYS.pivot_root, 'const char *', newRoot, 'const char *', putOld));
  check(result, 'pivot_root', () => `${quote(newRoot)}, ${quote(putOld)}`);
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
  const fd = Number(libc().syscall(SYS.open_tree, 'int', dirfd, 'const char *', path, 'unsigned int', flags));
  return check(fd, 'open_tree', () => `${dirfdLabel(dirfd)}, ${quote(path)}, ${renderFlags(flags, OPEN_TREE)}`);
}

/** move_mount(2): attaches the mount `fromPath` (beneath fromDirfd) at `toPath` (beneath toDirfd). */
export function moveMount(fromDirfd: number, fromPath: string, toDirfd: number, toPath: string, flags: number): void {
  const result = Number(libc().syscall(SYS.move_mount, 'int', fromDirfd, 'const char *', fromPath, 'int', toDirfd, 'const char *', toPath, 'unsigned int', flags));
  check(result, 'move_mount', () => `${dirfdLabel(fromDirfd)}, ${quote(fromPath)}, ${dirfdLabel(toDirfd)}, ${quote(toPath)}, ${renderFlags(flags, MOVE_MOUNT)}`);
}

/**
 * mount_setattr(2): sets `set` and clears `clear` (MOUNT_ATTR_*) on the mount at `path` beneath
 * dirfd, and changes its propagation when `propagation` (MS_PRIVATE, MS_SLAVE...) is not 0.
 */
export function mountSetattr(dirfd: number, path: string, flags: number, set: number, clear: number, propagation = 0): void {
  const attr = { attr_set: set, attr_clr: clear, propagation, userns_fd: 0 };
  const result = Number(libc().syscall(SYS.mount_setattr, 'int', dirfd, 'const char *', path, 'unsigned int', flags, STRUCT_POINTER.mountAttr, attr, 'size_t', structSize(STRUCT_POINTER.mountAttr)));
  check(result, 'mount_setattr', () => `${dirfdLabel(dirfd)}, ${quote(path)}, ${renderFlags(flags, OPEN_TREE)}, {set ${renderFlags(set, MOUNT_ATTR)}, clear ${renderFlags(clear, MOUNT_ATTR)}, propagation ${renderFlags(propagation, MOUNT_FLAGS)}}`);
}

export function fchdir(fd: number): void {
  check(libc().fchdir(fd), 'fchdir', () => String(fd));
}

export function chdir(path: string): void {
  check(libc().chdir(path), 'chdir', () => quote(path));
}

export function chmod(path: string, mode: number): void {
  check(libc().chmod(path, mode), 'chmod', () => `${quote(path)}, ${renderMode(mode)}`);
}

/** open(2); `mode` is passed only with O_CREAT, as the variadic C prototype expects. Returns the fd. */
export function open(path: string, flags: number, mode?: number): number {
  const fd = mode === undefined ? libc().open(path, flags) : libc().open(path, flags, 'uint32_t', mode);
  return check(fd, 'open', () => {
    // O_RDONLY is 0, so renderFlags alone cannot name it.
    const rendered =
      (flags & 3) !== 0 ? renderFlags(flags, OPEN_FLAGS) : flags === 0 ? 'O_RDONLY' : `O_RDONLY|${renderFlags(flags, OPEN_FLAGS)}`;
    return `${quote(path)}, ${rendered}${mode === undefined ? '' : ', ' + renderMode(mode)}`;
  });
}

export function close(fd: number): void {
  check(libc().close(fd), 'close', () => String(fd));
}

/** pidfd_open(2): an fd that polls readable once the process `pid` has exited. */
export function pidfdOpen(pid: number): number {
  return check(Number(libc().syscall(SYS.pidfd_open, 'int', pid, 'unsigned int', 0)), 'pidfd_open', () => `${pid}, 0`);
}

/** struct pollfd: int fd, short events, short revents. */
const POLLFD_BYTES = 8;
const POLLIN = 0x1;

/** poll(2) for reading, without a timeout: the fds with any event (readable, hung up or in error). */
export function pollReadable(fds: number[]): number[] {
  const table = Buffer.alloc(POLLFD_BYTES * fds.length);
  fds.forEach((fd, i) => {
    table.writeInt32LE(fd, POLLFD_BYTES * i);
    table.writeInt16LE(POLLIN, POLLFD_BYTES * i + 4);
  });
  const ready = libc().poll(table, fds.length, -1);
  if (ready < 0 && lastErrno() === ERRNO.EINTR) return [];
  check(ready, 'poll', () => `[${fds.join(', ')}], POLLIN, -1`);
  return fds.filter((_, i) => table.readInt16LE(POLLFD_BYTES * i + 6) !== 0);
}

// ---- host and domain names ----

export function sethostname(name: string): void {
  const bytes = Buffer.from(name);
  check(libc().sethostname(name, bytes.length), 'sethostname', () => quote(name));
}

export function setdomainname(name: string): void {
  const bytes = Buffer.from(name);
  check(libc().setdomainname(name, bytes.length), 'setdomainname', () => quote(name));
}

// ---- identity ----

export function setgroups(gids: readonly number[]): void {
  const list = Uint32Array.from(gids);
  check(libc().setgroups(list.length, list), 'setgroups', () => `[${gids.join(', ')}]`);
}

/** -1 leaves an id unchanged, as in C. */
export function setresuid(real: number, effective: number, saved: number): void {
  check(libc().setresuid(real, effective, saved), 'setresuid', () => `${real}, ${effective}, ${saved}`);
}

export function setresgid(real: number, effective: number, saved: number): void {
  check(libc().setresgid(real, effective, saved), 'setresgid', () => `${real}, ${effective}, ${saved}`);
}

export interface ResIds {
  real: number;
  effective: number;
  saved: number;
}

function getres(call: 'getresuid' | 'getresgid'): ResIds {
  const [real, effective, saved] = [new Uint32Array(1), new Uint32Array(1), new Uint32Array(1)];
  check(libc()[call](real, effective, saved), call, () => '');
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
function prctl(option: number, ...args: (number | bigint)[]): number {
  const variadic = args.flatMap((a) => ['unsigned long', a]);
  const result = libc().prctl(option, ...variadic);
  return check(result, 'prctl', () => [renderEnum(option, PRCTL), ...args.map(String)].join(', '));
}

export function setNoNewPrivs(): void {
  prctl(PRCTL.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/** The signal the kernel sends this process when its parent thread dies (0 = none). */
export function setParentDeathSignal(signal: number): void {
  prctl(PRCTL.PR_SET_PDEATHSIG, signal);
}

export function capBoundingDrop(cap: number): void {
  prctl(PRCTL.PR_CAPBSET_DROP, cap);
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

/** Sets a resource limit of `pid` (0 = this process) by the Plan's name for it (core, nofile…). */
export function setRlimit(name: string, soft: RlimitValue, hard: RlimitValue, pid = 0): void {
  const resource = rlimitResource(name);
  check(libc().prlimit(pid, resource, { rlim_cur: toRlim(soft), rlim_max: toRlim(hard) }, null), 'prlimit', () => `${pid}, RLIMIT_${name.toUpperCase()}, {${soft}, ${hard}}, NULL`);
}

/** Sets the personality from names (ADDR_NO_RANDOMIZE, PER_LINUX32…); returns the previous value. */
export function setPersonality(names: readonly string[]): number {
  let persona = 0;
  for (const name of names) {
    const bit = (PERSONALITY as Record<string, number>)[name];
    if (bit === undefined) throw new Error(`unknown personality '${name}' (known: ${Object.keys(PERSONALITY).join(', ')})`);
    persona |= bit;
  }
  return check(libc().personality(persona), 'personality', () => renderFlags(persona, PERSONALITY));
}

/** Starts a new session; returns its id. */
export function setsid(): number {
  return check(libc().setsid(), 'setsid', () => '');
}

// ---- file descriptors ----

export function fcntl(fd: number, cmd: number, arg?: number): number {
  const result = arg === undefined ? libc().fcntl(fd, cmd) : libc().fcntl(fd, cmd, 'int', arg);
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

const MAX_FD = 0xffffffff;

/**
 * Closes every fd in [first, last]. Kernels without close_range(2) (ENOSYS) get a loop over
 * /proc/self/fd instead. Only for the moment before execve: it also closes libuv's own fds.
 */
export function closeRange(first: number, last = MAX_FD, flags = 0): void {
  const result = libc().close_range(first, last, flags);
  if (result === 0) return;
  const errno = lastErrno();
  if (errno === ERRNO.ENOSYS && flags === 0) {
    for (const name of readdirSync('/proc/self/fd')) {
      const fd = Number(name);
      if (fd < first || fd > last) continue;
      // The directory fd readdirSync used is already closed; EBADF for it is expected.
      const closed = libc().close(fd);
      if (closed < 0 && lastErrno() !== ERRNO.EBADF) check(closed, 'close', () => String(fd));
    }
    return;
  }
  check(result, 'close_range', () => `${first}, ${last === MAX_FD ? '~0U' : last}, ${renderFlags(flags, CLOSE_RANGE_FLAGS)}`);
}

/** Replaces this process image. Never returns: on failure it throws. */
export function execve(path: string, argv: readonly string[], env: Readonly<Record<string, string>> | readonly string[]): never {
  const envp = Array.isArray(env) ? [...env] : Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const result = libc().execve(path, [...argv, null], [...envp, null]);
  check(result, 'execve', () => `${quote(path)}, [${argv.map(quote).join(', ')}], [${envp.length} vars]`);
  // execve returns only on failure, which check() has thrown for.
  throw new Error(`execve(${quote(path)}) returned ${result}`);
}

// ---- sockets ----

export function socket(domain: number, type: number, protocol = 0): number {
  const fd = libc().socket(domain, type, protocol);
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
  const cred: Partial<UcredStruct> = {};
  const length = Uint32Array.of(koffi.sizeof('stockade_ucred'));
  check(libc().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, length), 'getsockopt', () => `${fd}, SOL_SOCKET, SO_PEERCRED`);
  return { pid: cred.pid!, uid: cred.uid!, gid: cred.gid! };
}

// ---- ioctl ----

/** ioctl(2) with a pointer argument (a Buffer the kernel reads or fills). */
export function ioctlPointer(fd: number, request: number, arg: Buffer | null, describe: () => string): number {
  const result = libc().ioctl(fd, request, 'void *', arg);
  return check(result, 'ioctl', () => `${fd}, ${renderEnum(request, IOCTL)}, ${describe()}`);
}


// ---- keyrings ----

function keyctl(operation: number, describe: () => string, ...args: number[]): number {
  return check(Number(libc().syscall(SYS.keyctl, 'int', operation, ...args.flatMap((a) => ['long', a]))), 'keyctl', describe);
}

/** Puts the calling thread in a new anonymous session keyring (KEYCTL_JOIN_SESSION_KEYRING, NULL); returns its serial. */
export function joinNewSessionKeyring(): number {
  return keyctl(KEYCTL.JOIN_SESSION_KEYRING, () => 'KEYCTL_JOIN_SESSION_KEYRING, NULL', 0);
}

/** Unlinks every key from a keyring (KEYCTL_CLEAR); `keyring` is a serial or a KEY_SPEC value. */
export function clearKeyring(keyring: number): void {
  const name = Object.entries(KEY_SPEC).find(([, v]) => v === keyring)?.[0];
  keyctl(KEYCTL.CLEAR, () => `KEYCTL_CLEAR, ${name ? `KEY_SPEC_${name}_KEYRING` : keyring}`, keyring);
}

// ---- signals ----

const SIG_DFL = 0;

/** Sets `signal`'s disposition to SIG_DFL (the kernel's struct sigaction: handler 0, no flags, empty mask). */
export function setDefaultSignalAction(signal: number): void {
  const action = { handler: SIG_DFL, flags: 0, restorer: 0, mask: 0 };
  const result = Number(libc().syscall(SYS.rt_sigaction, 'int', signal, STRUCT_POINTER.kernelSigaction, action, 'void *', null, 'size_t', KERNEL_SIGSET_BYTES));
  check(result, 'rt_sigaction', () => `${signal}, SIG_DFL`);
}

/** Replaces the calling thread's signal mask (bit n-1 = signal n). */
export function setSignalMask(mask: bigint): void {
  const set = BigUint64Array.of(mask);
  const result = Number(libc().syscall(SYS.rt_sigprocmask, 'int', SIG_SETMASK, 'uint64_t *', set, 'void *', null, 'size_t', KERNEL_SIGSET_BYTES));
  check(result, 'rt_sigprocmask', () => `SIG_SETMASK, 0x${mask.toString(16)}`);
}

// ---- processes (the forked init, src/runtime/zygote.ts) ----

export function getpid(): number {
  return libc().getpid();
}

/** libc fork(2): its atfork handlers keep malloc usable in the child. Returns 0 in the child. */
export function fork(): number {
  return check(libc().fork(), 'fork', () => '');
}

/** Ends the process at once: no exit handlers, no flushing of anything the parent also holds. */
export function exitNow(status: number): never {
  libc()._exit(status);
  throw new Error('_exit returned');
}

export function madvise(address: number, length: number, advice: number): void {
  check(libc().madvise(address, length, advice), 'madvise', () => `0x${address.toString(16)}, ${length}, ${advice}`);
}

/** waitpid(2); `undefined` when WNOHANG and the child still runs, else its raw wait status. */
export function waitpid(pid: number, options = 0): number | undefined {
  const status = new Int32Array(1);
  const result = check(libc().waitpid(pid, status, options), 'waitpid', () => `${pid}, ${renderFlags(options, { WNOHANG })}`);
  return result === 0 ? undefined : status[0]!;
}

/** pipe2(2): [read end, write end]. */
export function pipe2(flags: number): [number, number] {
  const fds = new Int32Array(2);
  check(libc().pipe2(fds, flags), 'pipe2', () => renderFlags(flags, OPEN_FLAGS));
  return [fds[0]!, fds[1]!];
}

export function dup3(oldFd: number, newFd: number, flags: number): void {
  check(libc().dup3(oldFd, newFd, flags), 'dup3', () => `${oldFd}, ${newFd}, ${renderFlags(flags, OPEN_FLAGS)}`);
}

/** read(2) into `buffer`; returns the byte count (0 at end of file). */
export function read(fd: number, buffer: Buffer): number {
  return check(Number(libc().read(fd, buffer, buffer.length)), 'read', () => `${fd}, ${buffer.length}`);
}
