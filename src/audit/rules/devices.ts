// The /dev set: guix-daemon gives builds a handful of character devices and nothing more.
import type { Hit, Rule } from '../types.js';

/** What guix-daemon provides (nix/libstore/build.cc), kvm included when the host has it. */
const GUIX_DEVICES = new Set(['full', 'kvm', 'null', 'random', 'tty', 'urandom', 'zero', 'pts', 'shm', 'fd']);

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
        return GUIX_DEVICES.has(name) ? [] : [{ pointer: `/devices/${i}`, message: `device /dev/${name} is exposed to the build` }];
      }),
  },
];
