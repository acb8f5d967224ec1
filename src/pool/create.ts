// Creates a group pool the way the Guix manual does (groupadd, then useradd per build user),
// idempotently, and never touches an account it did not create.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { getgrnam, getpwnam, getpwuid, type Passwd } from '../ffi/nss.js';
import { PoolError, isNoLoginShell } from './rules.js';

export interface CreateOptions {
  group: string;
  count: number;
  /** UID of the first build user; the rest follow. Without it useradd picks system UIDs. */
  firstUid?: number;
  /** User name prefix; build users are PREFIX01, PREFIX02…. Default: the group name + `er` (guixbuild → guixbuilder). */
  prefix?: string;
}

export interface CreateResult {
  /** What was done, one line each (`groupadd --system guixbuild`…); empty when nothing changed. */
  actions: string[];
  /** The build users' names, in order. */
  users: string[];
}

const HOME = '/var/empty';

export function buildUserName(prefix: string, index: number): string {
  return `${prefix}${String(index).padStart(2, '0')}`;
}

export function buildUserGecos(index: number): string {
  return `Guix build user ${index}`;
}

/** The path `which nologin` would print. */
export function findNologin(path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): string {
  for (const dir of [...path.split(':'), '/usr/sbin', '/sbin']) {
    if (!dir.startsWith('/')) continue;
    const candidate = join(dir, 'nologin');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new PoolError('cannot find nologin (Debian: package login)');
}

/**
 * Checks every existing account first, then creates what is missing: either the whole pool is
 * made consistent or nothing is changed.
 */
export function createPool(options: CreateOptions): CreateResult {
  const { group, count, firstUid } = options;
  const prefix = options.prefix ?? `${group}er`;
  if (!Number.isInteger(count) || count < 1 || count > 99) throw new PoolError(`--count must be 1..99, not ${count}`);
  if (firstUid !== undefined && (!Number.isInteger(firstUid) || firstUid < 1)) {
    throw new PoolError(`--first-uid must be a positive integer, not ${firstUid}`);
  }
  const existingGroup = getgrnam(group);
  const users = Array.from({ length: count }, (_, i) => buildUserName(prefix, i + 1));
  const missing: { name: string; index: number }[] = [];
  users.forEach((name, i) => {
    const index = i + 1;
    const account = getpwnam(name);
    const wantedUid = firstUid === undefined ? undefined : firstUid + i;
    if (!account) {
      const holder = wantedUid === undefined ? null : getpwuid(wantedUid);
      if (holder) throw new PoolError(`pool ${group}: uid ${wantedUid} for ${name} is taken by ${holder.name}`);
      missing.push({ name, index });
      return;
    }
    const mismatch = foreignAccountReason(account, index, wantedUid, existingGroup);
    if (mismatch) throw new PoolError(`pool ${group}: ${name} exists and was not created by stockade pool create (${mismatch}); nothing changed`);
  });

  const actions: string[] = [];
  const run = (argv: string[]): void => {
    execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    actions.push(argv.join(' '));
  };
  if (!existingGroup) run(['groupadd', '--system', group]);
  if (missing.length > 0) {
    const shell = findNologin();
    for (const { name, index } of missing) {
      const uid = firstUid === undefined ? [] : ['-u', String(firstUid + index - 1)];
      run(['useradd', '-g', group, '-G', group, '-d', HOME, '-s', shell, '-c', buildUserGecos(index), '--system', ...uid, name]);
    }
  }
  return { actions, users };
}

/** Why an existing account is not one this command made for this pool; null when it is. */
function foreignAccountReason(
  account: Passwd,
  index: number,
  wantedUid: number | undefined,
  group: ReturnType<typeof getgrnam>,
): string | null {
  if (!group) return 'the group does not exist';
  if (account.gecos !== buildUserGecos(index)) return `gecos "${account.gecos}"`;
  if (account.gid !== group.gid) return `primary gid ${account.gid}, not ${group.gid}`;
  if (!group.members.includes(account.name)) return `not a member of ${group.name}`;
  if (account.home !== HOME) return `home ${account.home}`;
  if (!isNoLoginShell(account.shell)) return `shell ${account.shell}`;
  if (wantedUid !== undefined && account.uid !== wantedUid) return `uid ${account.uid}, not ${wantedUid}`;
  return null;
}
