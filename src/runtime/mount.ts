// The new root: a tmpfs holding only what the Plan lists, then pivot_root and detach the host.
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { chdir, chmod, mount, pivotRoot, umount2 } from '../ffi/libc.js';
import { MOUNT_FLAGS as MS, UMOUNT_FLAGS } from '../ffi/arch.js';
import type { Mount, Plan } from '../plan/types.js';

function flagsOf(m: Mount): number {
  return (m.readonly ? MS.MS_RDONLY : 0) | (m.nosuid ? MS.MS_NOSUID : 0) | (m.nodev ? MS.MS_NODEV : 0) | (m.noexec ? MS.MS_NOEXEC : 0);
}

/** Keeps every mount of this namespace from propagating to the host. */
export function makeMountsPrivate(): void {
  mount(null, '/', null, MS.MS_REC | MS.MS_PRIVATE);
}

export function mountRoot(plan: Plan, chroot: string): void {
  mount('tmpfs', chroot, 'tmpfs', MS.MS_NOSUID | MS.MS_NODEV, `mode=0755,size=${plan.root.size}`);
}

function createTarget(path: string, kind: 'dir' | 'file'): void {
  if (existsSync(path)) return;
  mkdirSync(kind === 'dir' ? path : dirname(path), { recursive: true, mode: 0o755 });
  if (kind === 'file') writeFileSync(path, '', { mode: 0o444 });
}

/** Mounts one Plan entry under the new root (before pivot_root, host paths are still visible). */
export function applyMount(m: Mount, root: string, buildTop: string, outputHosts: Record<string, string>): void {
  const target = join(root, m.target);
  if (m.type === 'bind') {
    const source = m.source === '{build_dir_host}' ? buildTop : m.source === '{output_host}' ? outputHosts[m.target] : m.source;
    if (source === undefined) throw new Error(`no host directory for output ${m.target}`);
    if (m.optional && !existsSync(source)) return;
    const kind = m.kind ?? (statSync(source).isDirectory() ? 'dir' : 'file');
    createTarget(target, kind);
    // Not recursive: submounts of a source stay out of the sandbox.
    mount(source, target, null, MS.MS_BIND);
    mount(null, target, null, MS.MS_BIND | MS.MS_REMOUNT | flagsOf(m));
    return;
  }
  createTarget(target, 'dir');
  mount(m.source, target, m.type, flagsOf(m), m.options ?? null);
}

/** Makes the new root `/`, detaches the host's, and seals `/` (mode, read-only). */
export function pivot(plan: Plan, root: string): void {
  chdir(root);
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only ours.
  pivotRoot('.', '.');
  umount2('.', UMOUNT_FLAGS.MNT_DETACH);
  chdir('/');
  chmod('/', plan.root.mode);
  if (plan.root.readonly) {
    mount(null, '/', null, MS.MS_BIND | MS.MS_REMOUNT | MS.MS_RDONLY | MS.MS_NOSUID | MS.MS_NODEV);
  }
}
