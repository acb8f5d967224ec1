// Names and patterns several layers use (policy checks, planner, audit, daemon, pool), each
// written once. The schemas repeat some of them; test/policy/lists.test.ts holds them equal.
import type { DeviceName } from './types.js';

/** Character devices bound from the host's /dev node of the same name. */
export const CHAR_DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'kvm', 'fuse', 'net/tun'] as const satisfies readonly DeviceName[];
/** Devices Stockade makes itself: a devpts, a tmpfs, the /dev/fd links. */
export const MADE_DEVICES = ['pts', 'shm', 'fd'] as const satisfies readonly DeviceName[];

export function isCharDevice(name: DeviceName): name is (typeof CHAR_DEVICES)[number] {
  return (CHAR_DEVICES as readonly DeviceName[]).includes(name);
}
/** Every device a policy may name (schemas/policy.schema.json $defs/deviceName). */
export const DEVICE_NAMES: readonly DeviceName[] = [...CHAR_DEVICES, ...MADE_DEVICES];
/** guix-daemon's /dev (nix/libstore/build.cc), kvm aside: what a policy gets by default. */
export const GUIX_DEVICES: readonly DeviceName[] = ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'fd'];

/** Sandbox paths Stockade sets up itself: nothing may be bound over them or hide them. */
export const RESERVED_TARGETS: readonly string[] = ['/', '/proc', '/dev', '/tmp', '/etc'];

/** Where the build-user pool keeps its per-UID lock files unless a policy says otherwise. */
export const DEFAULT_POOL_STATE_DIR = '/var/lib/stockade/pool';

/** A policy's name: the daemon serves policy NAME from NAME.yaml. */
export const POLICY_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]*$';

/** A build spec's name (schemas/spec.schema.json properties.name): it becomes part of a directory name. */
export const SPEC_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._+-]*$';
export const SPEC_NAME_MAX_LENGTH = 200;
