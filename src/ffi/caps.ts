// Capabilities: dropping the bounding set and clearing the ambient set, by the names plans use.
import { readFileSync } from 'node:fs';
import { capAmbientClearAll, capBoundingDrop } from './libc.js';
import { CAPABILITIES } from '../linux/capabilities.js';

/** Accepts `CAP_SYS_ADMIN`, `sys_admin` or `SYS_ADMIN`; returns the number. */
function capNumber(name: string): number {
  const upper = name.toUpperCase();
  const canonical = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  const index = (CAPABILITIES as readonly string[]).indexOf(canonical);
  if (index < 0) throw new Error(`unknown capability '${name}'`);
  return index;
}

/** The highest capability this kernel knows; it may know more than CAPABILITIES lists. */
function lastCap(): number {
  return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
}

/**
 * Drops every capability from the bounding set except `keep`, up to the kernel's last one,
 * so a capability newer than our table is dropped too. Needs CAP_SETPCAP. An unknown name
 * throws before anything is dropped.
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
