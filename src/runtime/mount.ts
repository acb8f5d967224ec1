// The new root: a tmpfs holding only what the Plan lists, then pivot_root and detach the host.
// Bind sources are the objects the supervisor opened and checked (request.ts), cloned from its
// fds; every mount target is created and opened through fds beneath the new root's fd, without
// following any symlink, so a symlink planted in a host directory already bound in cannot send
// a mkdir or a mount to the host. Mounts land on target fds, never on joined paths.
import { posix } from 'node:path';
import { AT_FDCWD, ERRNO, MOUNT_FLAGS as MS, OPEN_FLAGS, UMOUNT_FLAGS } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { chdir, chmod, close, fchdir, mount, MOUNT_ATTR, mountSetattr, moveMount, MOVE_MOUNT, OPEN_TREE, openTree, pivotRoot, umount2 } from '../ffi/libc.js';
import { fstat, mkdirat, openat } from '../ffi/fsat.js';
import { componentsOf, openBeneath, PathRefused } from '../ffi/resolve.js';
import { describeOrigin } from '../plan/describe.js';
import type { Mount, Plan } from '../plan/types.js';
import type { MountSources } from './request.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const ALL_ATTRS = MOUNT_ATTR.MOUNT_ATTR_RDONLY | MOUNT_ATTR.MOUNT_ATTR_NOSUID | MOUNT_ATTR.MOUNT_ATTR_NODEV | MOUNT_ATTR.MOUNT_ATTR_NOEXEC;

function flagsOf(m: Mount): number {
  return (m.readonly ? MS.MS_RDONLY : 0) | (m.nosuid ? MS.MS_NOSUID : 0) | (m.nodev ? MS.MS_NODEV : 0) | (m.noexec ? MS.MS_NOEXEC : 0);
}

function attrsOf(m: Mount): number {
  return (m.readonly ? MOUNT_ATTR.MOUNT_ATTR_RDONLY : 0) | (m.nosuid ? MOUNT_ATTR.MOUNT_ATTR_NOSUID : 0) |
    (m.nodev ? MOUNT_ATTR.MOUNT_ATTR_NODEV : 0) | (m.noexec ? MOUNT_ATTR.MOUNT_ATTR_NOEXEC : 0);
}

/** A target inside the new root, relative to it: the Plan's targets are absolute, `..` taken lexically (never above the root). */
function relativeTarget(target: string): string {
  return posix.normalize('/' + target).replace(/^\/+/, '').replace(/\/+$/, '');
}

/** Keeps every mount of this namespace from propagating to the host. */
export function makeMountsPrivate(): void {
  mount(null, '/', null, MS.MS_REC | MS.MS_PRIVATE);
}

/**
 * Clones each bind source from the supervisor's fd into a detached mount (not recursive:
 * submounts of a source stay out of the sandbox). Must run before unshare(CLONE_NEWNS): only a
 * mount of the caller's own namespace can be cloned, and the supervisor's are the host's.
 * Returns the detached mounts by mount index.
 */
export function cloneSources(sources: MountSources): (number | null)[] {
  const trees: (number | null)[] = [];
  try {
    for (const fd of sources.fds) {
      trees.push(fd === null ? null : openTree(AT_FDCWD, `/proc/${sources.pid}/fd/${fd}`, OPEN_TREE.OPEN_TREE_CLONE | OPEN_TREE.OPEN_TREE_CLOEXEC));
    }
    return trees;
  } catch (err) {
    for (const tree of trees) if (tree !== null) close(tree);
    throw err;
  }
}

/** Mounts the new root's tmpfs and returns an fd of it: everything below is made beneath that fd. */
export function mountRoot(plan: Plan, newRoot: string): number {
  mount('tmpfs', newRoot, 'tmpfs', MS.MS_NOSUID | MS.MS_NODEV, `mode=0755,size=${plan.root.size}`);
  // The build directory's `root` is root's, in a root-only directory: its path is safe to open.
  return openat(AT_FDCWD, newRoot, OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_CLOEXEC);
}

/**
 * Opens mount targets beneath the new root, creating what is missing, never through a symlink.
 * Parent directories on filesystems init mounted itself (the root tmpfs, /tmp...) are kept open
 * and reused: no other process can reach them before the builder runs. That keeps the cost per
 * target to its own last component, whatever the number of targets. A mount landing on or
 * above a kept directory (a Plan not listing parents first) drops them all. Directories in
 * host binds are looked up afresh each time.
 */
class Targets {
  private readonly kept = new Map<string, number>();
  private readonly keptFds = new Set<number>();
  /** Every proper prefix of a kept path: a mount there covers a kept directory. */
  private readonly aboveKept = new Set<string>();
  private readonly ownDevs = new Set<string>();

  constructor(private readonly rootFd: number) {
    this.ownDevs.add(fstat(rootFd).dev);
  }

  /** The filesystem just mounted fresh at `relative` (tmpfs, proc, devpts...): only init can reach it until the builder runs. */
  addOwn(relative: string, label: string): void {
    const fd = openBeneath(this.rootFd, relative, OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_DIRECTORY, { label });
    try {
      this.ownDevs.add(fstat(fd).dev);
    } finally {
      close(fd);
    }
  }

  /** O_DIRECTORY fd of `relative` (made if missing); the caller closes it. */
  dir(relative: string, label: string): number {
    const parts = componentsOf(relative);
    if (parts.length === 0) return openBeneath(this.rootFd, '', OPEN_FLAGS.O_DIRECTORY, { label });
    let start = parts.length - 1;
    while (start > 0 && !this.kept.has(parts.slice(0, start).join('/'))) start--;
    const base = start > 0 ? this.kept.get(parts.slice(0, start).join('/'))! : this.rootFd;
    let dirFd = base;
    try {
      for (let i = start; i < parts.length; i++) {
        try {
          mkdirat(dirFd, parts[i], 0o755);
        } catch (err) {
          if (!(err instanceof SyscallError && err.errno === ERRNO.EEXIST)) throw err;
        }
        const next = openBeneath(dirFd, parts[i], OPEN_FLAGS.O_DIRECTORY, { label });
        if (dirFd !== base && !this.keptFds.has(dirFd)) close(dirFd);
        dirFd = next;
        // The last component is the target itself: a mount will cover it, so it is never kept.
        if (i < parts.length - 1 && this.ownDevs.has(fstat(next).dev)) {
          this.kept.set(parts.slice(0, i + 1).join('/'), next);
          this.keptFds.add(next);
          for (let j = 1; j <= i; j++) this.aboveKept.add(parts.slice(0, j).join('/'));
        }
      }
      const result = dirFd;
      dirFd = base;
      return result;
    } finally {
      if (dirFd !== base && !this.keptFds.has(dirFd)) close(dirFd);
    }
  }

  /** Opens (creating it if missing) the target `relative`, a directory or a file. */
  open(relative: string, kind: 'dir' | 'file', label: string): number {
    if (kind === 'dir') return this.dir(relative, label);
    const parent = this.dir(posix.dirname(relative) === '.' ? '' : posix.dirname(relative), label);
    const name = posix.basename(relative);
    try {
      try {
        return openat(parent, name, OPEN_FLAGS.O_CREAT | OPEN_FLAGS.O_EXCL | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_WRONLY | OPEN_FLAGS.O_CLOEXEC, 0o444);
      } catch (err) {
        if (!(err instanceof SyscallError && err.errno === ERRNO.EEXIST)) throw err;
        return openBeneath(parent, name, OPEN_FLAGS.O_PATH, { label });
      }
    } finally {
      close(parent);
    }
  }

  /** Called before a mount lands at `relative`: kept directories it would cover are dropped. */
  mounting(relative: string): void {
    if (this.kept.has(relative) || this.aboveKept.has(relative) || relative === '') this.close();
  }

  close(): void {
    for (const fd of this.keptFds) close(fd);
    this.kept.clear();
    this.keptFds.clear();
    this.aboveKept.clear();
  }
}

/**
 * Mounts the Plan's entries under the new root (before pivot_root), in order. A bind attaches
 * its detached source from cloneSources (null: an optional source that was missing).
 */
export function applyMounts(plan: Plan, trees: (number | null)[], rootFd: number): void {
  const targets = new Targets(rootFd);
  try {
    for (const [i, m] of plan.mounts.entries()) {
      const relative = relativeTarget(m.target);
      targets.mounting(relative);
      try {
        applyMount(m, trees[i], relative, targets);
      } catch (err) {
        if (err instanceof PathRefused) throw err;
        const setting = m.origin ? `${describeOrigin(m.origin)}: ` : '';
        throw new Error(`${setting}mount at ${m.target}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    targets.close();
  }
}

function applyMount(m: Mount, tree: number | null, relative: string, targets: Targets): void {
  const label = `mount target ${m.target}`;
  if (m.type === 'bind') {
    if (tree === null) {
      if (m.optional) return;
      throw new Error(`no source was opened for the bind at ${m.target}`);
    }
    try {
      const kind = m.kind ?? ((fstat(tree).mode & S_IFMT) === S_IFDIR ? 'dir' : 'file');
      // Private: a clone of a shared host mount would otherwise stay its peer, and mounts made
      // under it in the sandbox would appear on the host.
      mountSetattr(tree, '', OPEN_TREE.AT_EMPTY_PATH, attrsOf(m), ALL_ATTRS & ~attrsOf(m), MS.MS_PRIVATE);
      const target = targets.open(relative, kind, label);
      try {
        moveMount(tree, '', target, '', MOVE_MOUNT.MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT.MOVE_MOUNT_T_EMPTY_PATH);
      } finally {
        close(target);
      }
    } finally {
      close(tree);
    }
    return;
  }
  const target = targets.open(relative, 'dir', label);
  try {
    // The kernel resolves the fd's magic link to the very directory opened: no path is walked again.
    mount(m.type, `/proc/self/fd/${target}`, m.type, flagsOf(m), m.options ?? null);
  } finally {
    close(target);
  }
  targets.addOwn(relative, label);
}

/** Makes the new root `/`, detaches the host's, and seals `/` (mode, read-only). */
export function pivot(plan: Plan, rootFd: number): void {
  fchdir(rootFd);
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only ours.
  pivotRoot('.', '.');
  umount2('.', UMOUNT_FLAGS.MNT_DETACH);
  chdir('/');
  chmod('/', plan.root.mode);
  if (plan.root.readonly) {
    mount(null, '/', null, MS.MS_BIND | MS.MS_REMOUNT | MS.MS_RDONLY | MS.MS_NOSUID | MS.MS_NODEV);
  }
}
