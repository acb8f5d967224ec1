// Account look-ups through libc's NSS (getpwnam_r & co.), so pools defined in LDAP, sssd or
// systemd-userdb resolve exactly as the rest of the system sees them; /etc files are never parsed.
import { fail, koffi, libc, type GroupStruct, type PasswdStruct } from './lib.js';
import { quote } from './errors.js';

export interface Passwd {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export interface Group {
  name: string;
  gid: number;
  /** gr_mem: the names of the group's explicit members (not users whose primary group it is). */
  members: string[];
}

const ERANGE = 34;
/** NSS modules may report "no such entry" with these instead of 0 and a NULL result (getpwnam_r(3)). */
const NOT_FOUND_ERRNOS = new Set([2 /* ENOENT */, 3 /* ESRCH */, 9 /* EBADF */, 1 /* EPERM */]);
const INITIAL_BUFFER = 1024;
/** Bounds the ERANGE retries: a group with tens of thousands of members still fits. */
const MAX_BUFFER = 64 * 1024 * 1024;

type Lookup = (out: object, buffer: Buffer, buflen: number, result: [unknown]) => number;

/**
 * Runs one reentrant look-up, growing the buffer on ERANGE. `decode` runs while the buffer the
 * entry points into is still alive (gr_mem's strings live there).
 */
function lookup<R, T>(call: string, args: string, invoke: Lookup, decode: (raw: R) => T): T | null {
  for (let size = INITIAL_BUFFER; size <= MAX_BUFFER; size *= 4) {
    const buffer = Buffer.alloc(size);
    const out = {};
    const result: [unknown] = [null];
    const rc = invoke(out, buffer, size, result);
    if (rc === ERANGE) continue;
    if (rc === 0) return result[0] ? decode(out as R) : null;
    if (NOT_FOUND_ERRNOS.has(rc)) return null;
    fail(call, args, rc);
  }
  fail(call, args, ERANGE);
}

function toPasswd(raw: PasswdStruct): Passwd {
  return {
    name: raw.pw_name ?? '',
    uid: raw.pw_uid,
    gid: raw.pw_gid,
    gecos: raw.pw_gecos ?? '',
    home: raw.pw_dir ?? '',
    shell: raw.pw_shell ?? '',
  };
}

function toGroup(raw: GroupStruct): Group {
  const members: string[] = [];
  for (let offset = 0; raw.gr_mem; offset += koffi.sizeof('void *')) {
    const entry = koffi.decode(raw.gr_mem, offset, 'void *') as bigint | null;
    if (!entry) break;
    members.push(koffi.decode.string(entry));
  }
  return { name: raw.gr_name ?? '', gid: raw.gr_gid, members };
}

export function getpwnam(name: string): Passwd | null {
  return lookup('getpwnam_r', quote(name), (out, buf, len, res) => libc().getpwnam_r(name, out, buf, len, res), toPasswd);
}

export function getpwuid(uid: number): Passwd | null {
  return lookup('getpwuid_r', String(uid), (out, buf, len, res) => libc().getpwuid_r(uid, out, buf, len, res), toPasswd);
}

export function getgrnam(name: string): Group | null {
  return lookup('getgrnam_r', quote(name), (out, buf, len, res) => libc().getgrnam_r(name, out, buf, len, res), toGroup);
}

export function getgrgid(gid: number): Group | null {
  return lookup('getgrgid_r', String(gid), (out, buf, len, res) => libc().getgrgid_r(gid, out, buf, len, res), toGroup);
}

/** All groups `user` belongs to, `gid` (normally its primary group) included, as initgroups(3) would set them. */
export function getgrouplist(user: string, gid: number): number[] {
  let capacity = 32;
  for (;;) {
    const groups = new Uint32Array(capacity);
    const count = new Int32Array([capacity]);
    // -1 means "too small" and sets count to the size needed; it does not set errno.
    if (libc().getgrouplist(user, gid, groups, count) >= 0) return Array.from(groups.subarray(0, count[0]));
    if (count[0] <= capacity) fail('getgrouplist', `${quote(user)}, ${gid}`, ERANGE);
    capacity = count[0];
  }
}
