// What of the host the build can see or change through its file system.
import { normalise } from '../../policy/semantics.js';
import type { Hit, Rule } from '../types.js';

/** Host paths that hold secrets, sockets of host services, or other users' data. */
const SENSITIVE_HOST_PATHS = ['/', '/home', '/root', '/run', '/var/run', '/var/lib', '/boot', '/dev', '/etc/shadow', '/etc/gshadow', '/etc/ssh', '/etc/sudoers'];
/** Kernel interfaces of the host: bound in, they show and often change the host itself. */
const HOST_KERNEL_FS = ['/proc', '/sys'];
/** The content-addressed stores: inputs there are immutable and named by their hash. */
const STORES = ['/gnu/store', '/nix/store'];
/** The host's own system directories: guix-default allows them so a host compiler can be an input. */
const HOST_SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt'];

export function isUnder(path: string, prefix: string): boolean {
  const p = normalise(path);
  return p === prefix || prefix === '/' || p.startsWith(prefix + '/');
}

/** A bind of `source` reaches `sensitive` when either lies within the other. */
function overlaps(source: string, sensitive: string): boolean {
  return sensitive !== '/' ? isUnder(source, sensitive) || isUnder(sensitive, normalise(source)) : normalise(source) === '/';
}

export const filesystemRules: Rule[] = [
  {
    id: 'STK-FS-001',
    concern: 'filesystem',
    severity: 'high',
    title: 'A fixed host path is bound writable',
    why: 'Whatever a build writes there stays on the host and is seen by later builds and host services: a build can poison them, and build results stop depending only on declared inputs.',
    fix: 'Remove `readonly: false` from the filesystem.paths entry; give the build an output (filesystem.outputs) instead.',
    check: ({ policy }) =>
      (policy.filesystem?.paths ?? []).flatMap((p, i): Hit[] =>
        p.readonly === false ? [{ pointer: `/filesystem/paths/${i}/readonly`, message: `host path ${p.source} is bound writable at ${p.target ?? p.source}` }] : []),
  },
  {
    id: 'STK-FS-002',
    concern: 'filesystem',
    severity: 'high',
    title: 'A host path holding secrets, sockets or user data is bound in',
    why: 'Home directories, /root, /run and /var/lib hold keys, credentials and the sockets of host daemons (docker, dbus, the stockade daemon itself); a build that can read or connect to them can leave the sandbox.',
    fix: 'Bind only the files the build needs (a toolchain directory, a certificate bundle), never a parent of these paths.',
    check: ({ policy }) =>
      (policy.filesystem?.paths ?? []).flatMap((p, i): Hit[] => {
        const hit = SENSITIVE_HOST_PATHS.find((s) => overlaps(p.source, s));
        if (!hit || HOST_KERNEL_FS.some((k) => isUnder(p.source, k))) return [];
        return [{ pointer: `/filesystem/paths/${i}/source`, message: `host path ${p.source} is bound in and ${hit === normalise(p.source) ? 'is' : 'overlaps'} ${hit}` }];
      }),
  },
  {
    id: 'STK-FS-003',
    concern: 'filesystem',
    severity: 'critical',
    title: "The host's /proc or /sys is bound in",
    why: "The host's procfs and sysfs show every host process, its command line and environment, and offer writable kernel knobs; the build's own /proc is mounted fresh for a reason.",
    fix: 'Remove the filesystem.paths entry; the sandbox has its own /proc (proc.mount: true) and needs no /sys.',
    check: ({ policy }) =>
      (policy.filesystem?.paths ?? []).flatMap((p, i): Hit[] =>
        HOST_KERNEL_FS.some((k) => isUnder(p.source, k)) ? [{ pointer: `/filesystem/paths/${i}/source`, message: `the host's ${p.source} is bound in at ${p.target ?? p.source}` }] : []),
  },
  {
    id: 'STK-FS-004',
    concern: 'filesystem',
    severity: 'low',
    title: "Inputs may come from the host's system directories",
    why: 'Inputs outside the store are not content-addressed: the build result then depends on what the host has installed, and a build may read any file there. guix-default allows this on purpose so a host compiler can be an input.',
    fix: 'List only the store in filesystem.inputs.under once the toolchain comes from the store.',
    check: ({ policy }) => {
      const system = (policy.filesystem?.inputs?.under ?? []).filter((prefix) => HOST_SYSTEM_DIRS.some((d) => isUnder(prefix, d)));
      return system.length ? [{ pointer: '/filesystem/inputs/under', message: `inputs may come from the host's ${system.join(', ')}` }] : [];
    },
  },
  {
    id: 'STK-FS-005',
    concern: 'filesystem',
    severity: 'high',
    title: 'Inputs may come from anywhere on the host outside the store',
    why: 'A build spec may then bind in any host path under this prefix (read-only): home directories, keys, the configuration of host services.',
    fix: 'Restrict filesystem.inputs.under to the store (/gnu/store).',
    check: ({ policy }) =>
      (policy.filesystem?.inputs?.under ?? []).flatMap((prefix, i): Hit[] =>
        STORES.some((s) => isUnder(prefix, s)) || HOST_SYSTEM_DIRS.some((d) => isUnder(prefix, d))
          ? []
          : [{ pointer: `/filesystem/inputs/under/${i}`, message: `inputs may come from the host's ${prefix}, outside the store` }]),
  },
  {
    id: 'STK-FS-006',
    concern: 'filesystem',
    severity: 'medium',
    title: 'The root of the sandbox stays writable',
    why: 'A writable root lets a build create files next to the mount points (fake /etc entries, binaries in /bin) that other processes of the build trust.',
    fix: 'Set filesystem.root.readonly: true (the default).',
    check: ({ plan }) => (plan.root.readonly ? [] : [{ pointer: '/filesystem/root/readonly', message: 'the root of the sandbox is not remounted read-only' }]),
  },
  {
    id: 'STK-FS-007',
    concern: 'filesystem',
    severity: 'low',
    title: 'No fresh /proc is mounted',
    why: 'Builds need /proc (/proc/self/fd, /proc/cpuinfo); without a fresh one that shows only the build, the usual workaround is to bind the host\'s, which exposes every host process.',
    fix: 'Set proc.mount: true (the default).',
    check: ({ plan }) => (plan.mounts.some((m) => m.type === 'proc') ? [] : [{ pointer: '/proc/mount', message: 'no fresh /proc is mounted for the build' }]),
  },
  {
    id: 'STK-FS-008',
    concern: 'filesystem',
    severity: 'info',
    title: "Remote actions see the worker's host paths",
    why: "Under `stockade runner` an input root at its real path shows every action where the worker keeps its build directory, and puts that path into what the action writes (debug information, error messages), so the same action gives different outputs on different workers.",
    fix: 'Set remote_execution.input_root to a fixed path inside the sandbox (policies/remote-exec.yaml: /build/root).',
    check: ({ policy }) => {
      const remote = policy.remote_execution;
      if (!remote || (remote.input_root !== undefined && remote.input_root !== 'real')) return [];
      return [{ pointer: remote.input_root === undefined ? '/remote_execution' : '/remote_execution/input_root', message: "remote actions run with their input root at the worker's host path" }];
    },
  },
];
