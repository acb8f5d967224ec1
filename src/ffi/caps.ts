// Capabilities: the name <-> number table, the bounding and ambient sets, and capget/capset.
import { readFileSync } from 'node:fs';
import { check } from './lib.js';
import { capAmbientClearAll, capBoundingDrop, libcFn } from './libc.js';
import { CAPABILITIES } from '../linux/capabilities.js';

export { CAPABILITIES };

export type CapabilityName = (typeof CAPABILITIES)[number];

/** Accepts `CAP_SYS_ADMIN`, `sys_admin` or `SYS_ADMIN`; returns the number. */
export function capNumber(name: string): number {
  const upper = name.toUpperCase();
  const canonical = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  const index = (CAPABILITIES as readonly string[]).indexOf(canonical);
  if (index < 0) throw new Error(`unknown capability '${name}'`);
  return index;
}

/** The name of a capability number (`cap_41` for ones newer than this table). */
export function capName(cap: number): string {
  return CAPABILITIES[cap] ?? `cap_${cap}`;
}

/** The highest capability this kernel knows; it may know more than CAPABILITIES lists. */
export function lastCap(): number {
  return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
}

/**
 * Drops every capability from the bounding set except `keep`, up to the kernel's last one,
 * so a capability newer than our table is dropped too. Needs CAP_SETPCAP.
 */
export function dropBoundingSet(keep: readonly string[] = []): void {
  const kept = new Set(keep.map(capNumber));
  const last = lastCap();
  for (let cap = 0; cap <= last; cap++) {
    if (!kept.has(cap)) capBoundingDrop(cap);
  }
}

export function clearAmbient(): void {
  capAmbientClearAll();
}

const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

export interface CapabilitySets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

/** The effective, permitted and inheritable sets of `pid` (0 = the calling thread), as 64-bit masks. */
export function getCapabilities(pid = 0): CapabilitySets {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  header.writeInt32LE(pid, 4);
  const data = Buffer.alloc(24); // two struct __user_cap_data_struct: low and high 32 bits
  check(libcFn('int capget(void *header, void *data)')(header, data), 'capget', () => `{v3, ${pid}}`);
  const mask = (offset: number) => BigInt(data.readUInt32LE(offset)) | (BigInt(data.readUInt32LE(offset + 12)) << 32n);
  return { effective: mask(0), permitted: mask(4), inheritable: mask(8) };
}

/** Sets the calling thread's effective, permitted and inheritable sets. */
export function setCapabilities(sets: CapabilitySets): void {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  const data = Buffer.alloc(24);
  const put = (offset: number, value: bigint) => {
    data.writeUInt32LE(Number(value & 0xffffffffn), offset);
    data.writeUInt32LE(Number((value >> 32n) & 0xffffffffn), offset + 12);
  };
  put(0, sets.effective);
  put(4, sets.permitted);
  put(8, sets.inheritable);
  check(libcFn('int capset(void *header, void *data)')(header, data), 'capset', () => {
    const names = (m: bigint) => capMaskNames(m).join('|') || '0';
    return `{v3, 0}, {eff=${names(sets.effective)}, perm=${names(sets.permitted)}, inh=${names(sets.inheritable)}}`;
  });
}

/** The names of the capabilities set in a mask, in number order. */
export function capMaskNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let cap = 0; cap < 64; cap++) if ((mask >> BigInt(cap)) & 1n) names.push(capName(cap));
  return names;
}
