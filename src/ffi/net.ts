// Network interface control through ioctl on an AF_INET socket (no netlink needed for `lo`).
import { IFF_UP, IFNAMSIZ, IOCTL, SOCKET_DOMAINS, SOCKET_TYPES, SOCKET_TYPE_FLAGS } from './arch.js';
import { quote } from './errors.js';
import { koffi, libc, type IfreqFlags } from './lib.js';
import { close, ioctlPointer, socket } from './libc.js';

const IFREQ = 'stockade_ifreq';

/** A struct ifreq naming the interface, as a buffer the kernel reads and fills. */
function ifreq(name: string): Buffer {
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new Error(`interface name too long: ${quote(name)}`);
  libc(); // declares the struct
  const request = Buffer.alloc(koffi.sizeof(IFREQ));
  koffi.encode(request, IFREQ, { ifr_name: name, ifr_flags: 0 });
  return request;
}

const flagsOf = (request: Buffer) => (koffi.decode(request, IFREQ) as IfreqFlags).ifr_flags;

/** The interface's flags (IFF_*), from SIOCGIFFLAGS. */
export function interfaceFlags(name: string): number {
  const fd = socket(SOCKET_DOMAINS.AF_INET, SOCKET_TYPES.SOCK_DGRAM | SOCKET_TYPE_FLAGS.SOCK_CLOEXEC);
  try {
    const request = ifreq(name);
    ioctlPointer(fd, IOCTL.SIOCGIFFLAGS, request, () => `{${quote(name)}}`);
    return flagsOf(request);
  } finally {
    close(fd);
  }
}

/** Brings an interface up (IFF_UP), keeping its other flags. */
export function bringInterfaceUp(name: string): void {
  const fd = socket(SOCKET_DOMAINS.AF_INET, SOCKET_TYPES.SOCK_DGRAM | SOCKET_TYPE_FLAGS.SOCK_CLOEXEC);
  try {
    const request = ifreq(name);
    ioctlPointer(fd, IOCTL.SIOCGIFFLAGS, request, () => `{${quote(name)}}`);
    const flags = flagsOf(request) | IFF_UP;
    koffi.encode(request, IFREQ, { ifr_name: name, ifr_flags: flags });
    ioctlPointer(fd, IOCTL.SIOCSIFFLAGS, request, () => `{${quote(name)}, flags=0x${flags.toString(16)}}`);
  } finally {
    close(fd);
  }
}
