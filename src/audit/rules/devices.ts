// The /dev set: guix-daemon gives builds a handful of character devices and nothing more.
import { GUIX_DEVICES } from '../../policy/lists.js';
import type { DeviceName } from '../../policy/types.js';
import type { Hit, Rule } from '../types.js';

/** What guix-daemon provides, kvm included when the host has it. */
const GUIX_SET = new Set<DeviceName>([...GUIX_DEVICES, 'kvm']);

export const deviceRules: Rule[] = [
  {
    id: 'STK-DEV-001',
    concern: 'devices',
    severity: 'high',
    title: "A device beyond guix-daemon's set is exposed",
    why: '/dev/fuse lets a build serve file systems the kernel then parses and /dev/net/tun lets it create network interfaces: both are large kernel attack surfaces no ordinary package build needs.',
    fix: 'Remove the device from `devices`; keep full, null, random, tty, urandom, zero, pts, shm, fd (and kvm where tests need it).',
    check: ({ policy }) =>
      (policy.devices ?? []).flatMap((d, i): Hit[] => {
        const name = typeof d === 'string' ? d : d.name;
        return GUIX_SET.has(name) ? [] : [{ pointer: `/devices/${i}`, message: `device /dev/${name} is exposed to the build` }];
      }),
  },
];
