// Network interface control through ioctl on an AF_INET socket (no netlink needed for `lo`).
import { IFF_UP, IFNAMSIZ, IFREQ_SIZE, IOCTL, SOCKET_DOMAINS, SOCKET_TYPES, SOCKET_TYPE_FLAGS } from './arch.js';
import { quote } from './errors.js';
import { close, ioctlPointer, socket } from './libc.js';

function ifreq(name: string): Buffer {
  const request = Buffer.alloc(IFREQ_SIZE);
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new Error(`interface name too long: ${quote(name)}`);
  request.write(name, 0);
  return request;
}

/** The interface's flags (IFF_*), from SIOCGIFFLAGS. */
export function interfaceFlags(name: string): number {
  const fd = socket(SOCKET_DOMAINS.AF_INET, SOCKET_TYPES.SOCK_DGRAM | SOCKET_TYPE_FLAGS.SOCK_CLOEXEC);
  try {
    const request = ifreq(name);
    ioctlPointer(fd, IOCTL.SIOCGIFFLAGS, request, () => `{${quote(name)}}`);
    return request.readUInt16LE(IFNAMSIZ);
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
    const flags = request.readUInt16LE(IFNAMSIZ) | IFF_UP;
    request.writeUInt16LE(flags, IFNAMSIZ);
    ioctlPointer(fd, IOCTL.SIOCSIFFLAGS, request, () => `{${quote(name)}, flags=0x${flags.toString(16)}}`);
  } finally {
    close(fd);
  }
}
