// The registry of live builds on this machine, shared by every `stockade run` and daemon: one
// record file per build in a root-only directory, locked by its build for the build's whole life,
// so a build whose holder died (kill -9, a crash, a reboot) is known by its lock being free. A
// record names what its build claims (its outputs) and each thing it makes on the host (build
// directory, cgroup, init, every hand-over step), appended before the thing is made (the build
// directory as soon as it is, with its identity: its name is only known then). Only what outlives
// a reboot is fsynced: the build directory and the hand-over's steps, which are on disk. The rest
// (build user, cgroup, init) is gone after a reboot, and a crash of the process alone loses
// nothing written (the kernel has it); each fsync would block the daemon's event loop.
//
// Admission, for `stockade run` and the daemon alike, takes the registry lock, cleans after every
// dead build, refuses outputs overlapping a live (queued or running) build's, and writes its own
// record, all under that lock: no two admissions interleave, and nothing a dead build claimed is
// given to another before its leftovers are gone. The daemon's start-up recovery is the same clean.
//
// flock, as the pool's UID locks: it belongs to the open file description, as OFD locks do, so the
// daemon's many builds in one process exclude each other (POSIX record locks belong to the
// process: they would not, and closing any fd on the file would drop them). Records live on disk
// (/var/lib), not in /run: after a reboot, staging and build directories on disk are still there
// to clean, and every lock is free.
//
// A record's paths are the host's, written when they were made; builds may have raced them since.
// Everything removed is reached beneath an fd of its admin-set root without following symlinks,
// and checked first (type, owner, identity, name) against what the build made.
import { existsSync, fstatSync, fsync, fsyncSync, readdirSync, readFileSync, readSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERRNO, OPEN_FLAGS } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, fstat, openat, removeTreeAt, statx, unlinkat, type Stat } from '../ffi/fsat.js';
import { close, flock, LOCK_EX, LOCK_NB } from '../ffi/libc.js';
import { componentsOf, isMissing, openBeneath, openRoot, PathRefused } from '../ffi/resolve.js';
import { reapUid } from '../pool/index.js';
import { ensureStateDir, makePrivateDir, tryLock, unlock } from '../pool/lock.js';
import type { Plan } from '../plan/types.js';
import { isUnder, normalise } from '../policy/semantics.js';
import { unmountTop } from './builddir.js';
import { cgroupDirsOf, destroyCgroup } from './cgroup.js';
import type { HandOverJournal } from './outputs.js';

export const DEFAULT_REGISTRY = '/var/lib/stockade/builds';
/** Where the registry is instead (tests, a second installation). Read from root's own environment. */
export const REGISTRY_ENV = 'STOCKADE_BUILDS_DIR';
/** What one record may hold: its outputs, and a few lines per output for the hand-over. */
const MAX_RECORD_BYTES = 256 << 10;
/** More records than this means something is wrong: admission stops rather than read them all. */
const MAX_RECORDS = 4096;
/** How long admission waits for another admission (which may be cleaning a dead build's tree). */
const REGISTRY_WAIT_MS = 120_000;
const RECORD_SUFFIX = '.rec';
const STAGING_PREFIX = '.stockade-handover-';
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_ISVTX = 0o1000;
const EWOULDBLOCK = 11;
const RECORD_FLAGS = OPEN_FLAGS.O_RDWR | OPEN_FLAGS.O_APPEND | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_CLOEXEC;

export function registryPath(): string {
  return process.env[REGISTRY_ENV] || DEFAULT_REGISTRY;
}

/** One line of a record. */
type Entry =
  | { t: 'build'; id: string; name: string; pid: number; boot: string; since: string; outputs: string[]; claims: string[]; under: string[]; owner: number }
  | { t: 'uid'; stateDir: string; uid: number }
  | { t: 'cgroup'; id: string }
  | { t: 'dir'; parent: string; name: string; dev: string; ino: string }
  | { t: 'init'; pid: number; start: string }
  | { t: 'creating'; root: string; relative: string; kind: 'staging' | 'directory' }
  | { t: 'installing'; root: string; relative: string }
  | { t: 'complete' }
  | { t: 'kept' };

type Header = Extract<Entry, { t: 'build' }>;

/** A live build's record: held (locked) until `release`. Also the journal its hand-over writes. */
export class BuildRecord implements HandOverJournal {
  private bytes: number;
  private released = false;
  /** The last sync started on libuv's threads ('background') while it runs, and how one failed. */
  private syncing: Promise<void> | undefined;
  private syncFailed: Error | undefined;

  constructor(readonly header: Header, private readonly registryFd: number, private readonly fd: number, private readonly file: string) {
    this.bytes = fstat(fd).size;
  }

  get id(): string {
    return this.header.id;
  }

  /**
   * Appends one entry; throws (and the change it announces must not be made) if it cannot.
   * `sync`: on disk (with every line before it) before this returns; `background`: synced off
   * the event loop, for what is already made when noted (a failure of that sync is thrown by
   * the next append); `none`: what a reboot makes moot.
   */
  private append(entry: Entry, durability: 'sync' | 'background' | 'none'): void {
    if (this.syncFailed) throw new Error(`build record ${this.file}: fsync failed: ${this.syncFailed.message}`);
    const line = JSON.stringify(entry) + '\n';
    const size = Buffer.byteLength(line);
    if (this.bytes + size > MAX_RECORD_BYTES) throw new Error(`build record ${this.file}: over ${MAX_RECORD_BYTES} bytes, cannot note ${entry.t}`);
    writeSync(this.fd, line);
    this.bytes += size;
    if (durability === 'sync') fsyncSync(this.fd);
    if (durability === 'background') {
      const synced: Promise<void> = (this.syncing ?? Promise.resolve()).then(() => new Promise<void>((done) => fsync(this.fd, (err) => {
        if (err) this.syncFailed ??= err;
        if (this.syncing === synced) this.syncing = undefined;
        done();
      })));
      this.syncing = synced;
    }
  }

  /** The build user leased: its processes are reaped after a crash (if nobody holds it by then). */
  noteUid(stateDir: string, uid: number): void {
    this.append({ t: 'uid', stateDir, uid }, 'none');
  }

  /** Before creating the build's cgroup `stockade/<id>`. */
  noteCgroup(id: string): void {
    this.append({ t: 'cgroup', id }, 'none');
  }

  /** The build directory, just made: its identity, so a later directory of the same name is never taken for it. */
  noteBuildDir(path: string): void {
    const parent = dirname(path);
    const name = basename(path);
    const rootFd = openRoot(parent);
    try {
      const st = statx(rootFd, name, AT_SYMLINK_NOFOLLOW);
      this.append({ t: 'dir', parent, name, dev: st.dev, ino: String(st.ino) }, 'background');
    } finally {
      close(rootFd);
    }
  }

  /** init, just started: PID 1 of the build's namespace, killed after a crash if still the same process. */
  noteInit(pid: number): void {
    const start = startTimeOf(pid);
    if (start !== undefined) this.append({ t: 'init', pid, start }, 'none');
  }

  /** The build directory is kept (--keep-failed): recovery leaves it. */
  noteKept(): void {
    this.append({ t: 'kept' }, 'sync');
  }

  creating(entry: { root: string; relative: string; kind: 'staging' | 'directory' }): void {
    this.append({ t: 'creating', root: entry.root, relative: entry.relative, kind: entry.kind }, 'sync');
  }

  installing(entry: { root: string; relative: string }): void {
    this.append({ t: 'installing', root: entry.root, relative: entry.relative }, 'sync');
  }

  complete(): void {
    this.append({ t: 'complete' }, 'sync');
  }

  /**
   * Ends the record. `keep`: the build's own clean-up failed, so the record stays, its lock
   * freed, and the next admission cleans after it as after a dead build. Idempotent.
   */
  release(keep = false): void {
    if (this.released) return; // the fds may be someone else's by now
    this.released = true;
    try {
      // Unlinked before the lock goes: an admission that then gets the lock sees nlink 0 and leaves it.
      if (!keep) unlinkat(this.registryFd, this.file, 0);
    } finally {
      const closeFds = () => {
        close(this.fd);
        close(this.registryFd);
      };
      // A background sync still has the fd: closed after it (the lock of a record unlinked holds nothing back).
      if (this.syncing) void this.syncing.then(closeFds);
      else closeFds();
    }
  }
}

/** An output this build claims overlaps one a live (or unclean dead) build claims: the spec is refused. */
export class OutputClaimed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputClaimed';
  }
}

export interface AdmitOptions {
  /** The build's id (the daemon's); random by default. */
  id?: string;
  registry?: string;
  /** Told of each leftover of a dead build: removed, left as it is (and why), or not cleaned. */
  onRemoved?: (line: string) => void;
}

/**
 * Admits a build: cleans after dead builds, refuses outputs that overlap a live build's, and
 * returns the build's record, held until released. `claims` are the outputs with their symlinks
 * resolved (what is compared), in the order of plan.build.outputs (what messages name).
 */
export async function admit(plan: Plan, claims: string[], options: AdmitOptions = {}): Promise<BuildRecord> {
  const registryFd = openRegistry(options.registry ?? registryPath());
  try {
    return await underRegistryLock(registryFd, async () => {
      const live = await cleanStale(registryFd, options.onRemoved ?? (() => {}));
      for (const [i, claim] of claims.entries()) {
        for (const { header: other, failed } of live) {
          for (const [j, theirs] of other.claims.entries()) {
            const relation = claim === theirs ? 'is also' : isUnder(claim, theirs) ? 'lies under' : isUnder(theirs, claim) ? 'is a prefix of' : undefined;
            if (!relation) continue;
            const shown = (written: string, resolved: string) => (written === resolved ? written : `${written} (${resolved})`);
            throw new OutputClaimed(`output ${shown(plan.build.outputs[i], claim)} ${relation} output ${shown(other.outputs[j], theirs)} of build ${other.name} (${other.id}, pid ${other.pid}), ${failed ? `dead, whose leftovers could not all be removed (${failed})` : 'which is queued or running'}: concurrent builds may not share outputs`);
          }
        }
      }
      return createRecord(registryFd, {
        t: 'build', id: options.id ?? randomBytes(8).toString('hex'), name: plan.build.name, pid: process.pid, boot: bootId(), since: new Date().toISOString(),
        outputs: plan.build.outputs, claims, under: plan.build.outputsUnder, owner: plan.outputs.owner.uid,
      });
    });
  } catch (err) {
    close(registryFd);
    throw err;
  }
}

/** Cleans after every dead build of the registry (the daemon's start-up recovery); returns what it did, one line each. */
export async function recoverStale(registry = registryPath()): Promise<string[]> {
  const removed: string[] = [];
  const registryFd = openRegistry(registry);
  try {
    await underRegistryLock(registryFd, () => cleanStale(registryFd, (line) => removed.push(line)));
  } finally {
    close(registryFd);
  }
  return removed;
}

/** Opens (making it if missing) the registry directory, which only root may write. */
function openRegistry(path: string): number {
  makePrivateDir(path);
  const fd = openRoot(path);
  try {
    const st = fstat(fd);
    const euid = process.geteuid?.() ?? 0;
    if ((st.mode & S_IFMT) !== S_IFDIR) throw new Error(`build registry ${path} is not a directory`);
    if (st.uid !== euid) throw new Error(`build registry ${path} is owned by uid ${st.uid}, not ${euid}`);
    if ((st.mode & 0o077) !== 0) throw new Error(`build registry ${path} is open to others (mode ${(st.mode & 0o7777).toString(8)}); it must be 0700`);
    return fd;
  } catch (err) {
    close(fd);
    throw err;
  }
}

/** Runs `use` holding the registry lock, waiting for it without blocking the event loop. */
async function underRegistryLock<T>(registryFd: number, use: () => Promise<T>): Promise<T> {
  const fd = openat(registryFd, '.lock', OPEN_FLAGS.O_RDWR | OPEN_FLAGS.O_CREAT | OPEN_FLAGS.O_NOFOLLOW | OPEN_FLAGS.O_CLOEXEC, 0o600);
  try {
    const deadline = Date.now() + REGISTRY_WAIT_MS;
    while (!tryFlock(fd)) {
      if (Date.now() > deadline) throw new Error(`build registry: another admission has held its lock for over ${REGISTRY_WAIT_MS / 1000} s`);
      await sleep(10);
    }
    return await use();
  } finally {
    close(fd); // the lock goes with it
  }
}

function tryFlock(fd: number): boolean {
  try {
    flock(fd, LOCK_EX | LOCK_NB);
    return true;
  } catch (err) {
    if (err instanceof SyscallError && err.errno === EWOULDBLOCK) return false;
    throw err;
  }
}

function createRecord(registryFd: number, header: Header): BuildRecord {
  if (!/^[0-9a-f]{16}$/.test(header.id)) throw new Error(`build id ${JSON.stringify(header.id)} is not 16 hex digits`);
  // Checked as it will be read back: a live build's record must always be readable by others.
  try {
    checkEntry(header, 1);
  } catch {
    throw new Error(`build ${header.name}: it cannot be recorded (at most 1024 outputs; names and paths at most 4096 bytes)`);
  }
  if (Buffer.byteLength(JSON.stringify(header)) > MAX_RECORD_BYTES / 2) throw new Error(`build ${header.name}: its outputs take more than ${MAX_RECORD_BYTES / 2} bytes to record`);
  const file = header.id + RECORD_SUFFIX;
  const fd = openat(registryFd, file, RECORD_FLAGS | OPEN_FLAGS.O_CREAT | OPEN_FLAGS.O_EXCL, 0o600);
  try {
    // Nobody else can have it: it was just made, under the registry lock.
    flock(fd, LOCK_EX | LOCK_NB);
    // Synced with the first durable entry: until the build makes something on disk, a reboot leaves nothing to clean.
    writeSync(fd, JSON.stringify(header) + '\n');
    return new BuildRecord(header, registryFd, fd, file);
  } catch (err) {
    unlinkat(registryFd, file, 0);
    close(fd);
    throw err;
  }
}

/** A dead or live build, as its record says. */
interface Read {
  header: Header;
  entries: Entry[];
}

/**
 * Cleans after every record whose build is dead; returns the headers of live builds (and of
 * dead ones whose clean-up failed: they still hold their claims, and are retried next time).
 */
async function cleanStale(registryFd: number, report: (line: string) => void): Promise<{ header: Header; failed?: string }[]> {
  const names = readdirSync(`/proc/self/fd/${registryFd}`).filter((n) => n.endsWith(RECORD_SUFFIX));
  if (names.length > MAX_RECORDS) throw new Error(`build registry holds ${names.length} records, more than ${MAX_RECORDS}: clean it by hand`);
  const live: { header: Header; failed?: string }[] = [];
  for (const name of names) {
    let fd: number;
    try {
      fd = openat(registryFd, name, RECORD_FLAGS);
    } catch (err) {
      if (isMissing(err)) continue; // released meanwhile
      throw err;
    }
    try {
      const dead = tryFlock(fd);
      // Released (unlinked) just before its lock went: nothing of it is left.
      if (dead && fstat(fd).nlink === 0) continue;
      let read: Read;
      try {
        read = readRecord(fd);
      } catch (err) {
        if (!dead) throw new Error(`build record ${name} of a live build: ${(err as Error).message}`);
        report(`removed unreadable build record ${name} (${(err as Error).message}); what it named is left`);
        unlinkat(registryFd, name, 0);
        continue;
      }
      if (!dead) {
        live.push({ header: read.header });
        continue;
      }
      try {
        await cleanAfter(read, report);
      } catch (err) {
        report(`could not clean after build ${read.header.id} (${read.header.name}), pid ${read.header.pid}; its record stays, retried at the next admission: ${(err as Error).message}`);
        live.push({ header: read.header, failed: (err as Error).message });
        continue;
      }
      unlinkat(registryFd, name, 0);
    } finally {
      close(fd);
    }
  }
  return live;
}

/** Reads a record, at most MAX_RECORD_BYTES; a torn last line (a crash mid-append) is ignored. */
function readRecord(fd: number): Read {
  const size = fstatSync(fd).size;
  if (size > MAX_RECORD_BYTES) throw new Error(`${size} bytes, over ${MAX_RECORD_BYTES}`);
  const buffer = Buffer.alloc(size);
  const length = size ? readSync(fd, buffer, 0, size, 0) : 0;
  const text = buffer.toString('utf8', 0, length);
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a line whose append never finished
  const entries = lines.map((line, i) => checkEntry(JSON.parse(line), i + 1));
  const header = entries[0];
  if (header?.t !== 'build') throw new Error('no header line');
  return { header, entries: entries.slice(1) };
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 4096;
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.length <= 1024 && v.every(isString);
const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32;
const isAbsolute = (v: unknown): v is string => isString(v) && v.startsWith('/');

/** Every field of an entry checked for its type: a record is read back by root. */
function checkEntry(value: unknown, line: number): Entry {
  const e = value as Record<string, unknown>;
  const ok = (() => {
    switch (e?.t) {
      case 'build':
        return isString(e.id) && isString(e.name) && isId(e.pid) && typeof e.boot === 'string' && isString(e.since) && isStrings(e.outputs) && isStrings(e.claims) &&
          e.outputs.length === e.claims.length && isStrings(e.under) && e.under.every(isAbsolute) && isId(e.owner);
      case 'uid':
        return isAbsolute(e.stateDir) && isId(e.uid);
      case 'cgroup':
        return isString(e.id) && /^[A-Za-z0-9._+-]+$/.test(e.id) && e.id !== '.' && e.id !== '..';
      case 'dir':
        return isAbsolute(e.parent) && isString(e.name) && !e.name.includes('/') && e.name !== '.' && e.name !== '..' && isString(e.dev) && isString(e.ino);
      case 'init':
        return isId(e.pid) && isString(e.start);
      case 'creating':
        return isAbsolute(e.root) && isString(e.relative) && (e.kind === 'staging' || e.kind === 'directory');
      case 'installing':
        return isAbsolute(e.root) && isString(e.relative);
      case 'complete':
      case 'kept':
        return true;
      default:
        return false;
    }
  })();
  if (!ok) throw new Error(`line ${line}: not a valid entry`);
  return e as Entry;
}

/** Removes what a dead build left, in reverse order of its making; throws if anything could not be. */
async function cleanAfter({ header, entries }: Read, report: (line: string) => void): Promise<void> {
  const of = `of build ${header.id} (${header.name}), pid ${header.pid}`;
  const failures: string[] = [];
  const step = async (what: string, action: () => void | Promise<void>) => {
    try {
      await action();
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
    }
  };
  const kinds = <T extends Entry['t']>(t: T) => entries.filter((e): e is Extract<Entry, { t: T }> => e.t === t);

  // Processes first: nothing of the build may still write where the rest is removed.
  for (const { id } of kinds('cgroup')) {
    await step(`cgroup ${id}`, async () => {
      const dirs = cgroupDirsOf(id);
      if (!dirs.length) return;
      const processes = new Set(dirs.flatMap((dir) => readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean))).size;
      await destroyCgroup({ dirs });
      for (const dir of dirs) report(`removed cgroup ${dir}${processes ? ` and its ${processes} processes` : ''}, ${of}`);
    });
  }
  for (const init of kinds('init')) {
    await step(`init pid ${init.pid}`, () => {
      if (header.boot !== bootId() || startTimeOf(init.pid) !== init.start) return; // gone: its pid may be someone else's now
      process.kill(init.pid, 'SIGKILL');
      report(`removed init (pid ${init.pid}) and its PID namespace, ${of}`);
    });
  }
  for (const { stateDir, uid } of kinds('uid')) {
    await step(`build uid ${uid}`, async () => {
      // Held by someone: its holder reaped it before use, and its processes are that build's now.
      // A pool state dir removed since holds no lock to take (nor is it made again): the uid's
      // processes are still the dead build's to kill.
      if (!existsSync(stateDir)) {
        const { killed } = await reapUid(uid);
        if (killed) report(`removed ${killed} processes of build uid ${uid}, ${of}`);
        return;
      }
      // As acquire does: the lock excludes any build taking the uid while its processes are killed.
      ensureStateDir(stateDir);
      const fd = tryLock(stateDir, uid);
      if (fd === null) return;
      try {
        const holder = readFileSync(fd, 'utf8');
        const { killed } = await reapUid(uid);
        if (killed) report(`removed ${killed} processes of build uid ${uid}, ${of}`);
        if (holder.includes(`"pid":${header.pid},`)) report(`removed stale lock record ${stateDir}/${uid} (build ${header.name}), ${of}`);
      } finally {
        unlock(fd); // blanks the record naming the dead holder
      }
    });
  }

  /** Removes what an entry names if it is still what the build made; anything else is left, and said. */
  const remove = (label: string, entry: { root: string; relative: string }, ours: (st: Stat) => string | undefined, what: 'tree' | 'empty', allowed?: string) =>
    step(`${label} ${join(entry)}`, () => {
      const outcome = allowed ?? removeBeneath(entry, ours, what);
      if (outcome === 'removed') report(`removed ${label} ${join(entry)}, ${of}`);
      else if (outcome !== 'absent') report(`left ${label} ${join(entry)} as it is (${outcome}), ${of}`);
    });
  const isDir = (st: Stat) => (st.mode & S_IFMT) === S_IFDIR;
  // An output is a directory, a regular file or a symlink, as the builder made it.
  const isOutputKind = (st: Stat) => isDir(st) || (st.mode & S_IFMT) === S_IFREG || (st.mode & S_IFMT) === S_IFLNK;
  const under = header.under.map(normalise);
  const complete = kinds('complete').length > 0;
  const creating = kinds('creating');
  // An interrupted hand-over is undone: what it installed, its staging, the directories it made.
  // An entry is taken only for what the build could have made: under its outputs' roots, at or next to its outputs.
  if (!complete) {
    for (const entry of kinds('installing').reverse()) {
      const allowed = under.includes(entry.root) && header.outputs.includes(join(entry)) ? undefined : 'not an output of the build';
      await remove('output installed by an unfinished hand-over', entry, (st) => (isOutputKind(st) && st.uid === header.owner ? undefined : 'not the output the hand-over installed'), 'tree', allowed);
    }
  }
  // Staging goes even after a complete hand-over: the crash may have come before its removal.
  for (const entry of creating.filter((e) => e.kind === 'staging')) {
    const path = join(entry);
    const allowed = under.includes(entry.root) && basename(path).startsWith(STAGING_PREFIX) && header.outputs.some((o) => dirname(o) === dirname(path)) ? undefined : 'not a staging directory of the build';
    await remove('hand-over staging', entry, (st) => (isDir(st) && st.uid === 0 && (st.mode & 0o7777) === 0o700 ? undefined : 'not a root-owned 0700 directory'), 'tree', allowed);
  }
  if (!complete) {
    for (const entry of creating.filter((e) => e.kind === 'directory').reverse()) {
      const path = join(entry);
      const allowed = under.includes(entry.root) && header.outputs.some((o) => o !== path && isUnder(o, path)) ? undefined : 'not a directory on the way to an output of the build';
      await remove('directory made by the hand-over', entry, (st) => (isDir(st) && st.uid === 0 ? undefined : 'not a root-owned directory'), 'empty', allowed);
    }
  }
  if (!kinds('kept').length) {
    for (const dir of kinds('dir')) {
      const ours = (st: Stat) => (isDir(st) && st.dev === dir.dev && String(st.ino) === dir.ino && st.uid === 0 ? undefined : 'not the directory the build made');
      // A build dir limited by limits.build_dir_bytes has a tmpfs on `top`; the directory is root-owned 0700.
      await step(`build directory tmpfs ${join({ root: dir.parent, relative: dir.name })}/top`, () => {
        if (unmountTop(join({ root: dir.parent, relative: dir.name }))) report(`removed build directory tmpfs ${join({ root: dir.parent, relative: dir.name })}/top, ${of}`);
      });
      await remove('build directory', { root: dir.parent, relative: dir.name }, ours, 'tree');
    }
  }
  if (failures.length) throw new Error(failures.join('; '));
}

function join(entry: { root: string; relative: string }): string {
  return entry.root === '/' ? `/${entry.relative}` : `${entry.root}/${entry.relative}`;
}

/**
 * Removes `relative` beneath the root `root` (a whole tree, or an empty directory) if `ours`
 * finds it is what the build made; the root is the admin's, what lies beneath it is not trusted.
 * Returns 'removed', 'absent', or why it was left.
 */
function removeBeneath(entry: { root: string; relative: string }, ours: (st: Stat) => string | undefined, what: 'tree' | 'empty'): string {
  let parts: string[];
  try {
    parts = componentsOf(entry.relative);
  } catch (err) {
    return (err as Error).message;
  }
  const name = parts.pop();
  if (name === undefined) return 'names its root itself';
  let rootFd: number;
  try {
    rootFd = openRoot(entry.root);
  } catch (err) {
    if (isMissing(err)) return 'absent';
    throw err;
  }
  try {
    let parentFd: number;
    try {
      parentFd = openBeneath(rootFd, parts.join('/'), OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_DIRECTORY, { label: join(entry) });
    } catch (err) {
      if (isMissing(err)) return 'absent';
      if (err instanceof PathRefused) return err.message;
      throw err;
    }
    try {
      let st;
      try {
        st = statx(parentFd, name, AT_SYMLINK_NOFOLLOW);
      } catch (err) {
        if (isMissing(err)) return 'absent';
        throw err;
      }
      const wrong = ours(st);
      if (wrong) return wrong;
      // Between the check and the removal by name, only root (or a sticky directory's owner) can swap the entry.
      const parent = fstat(parentFd);
      if ((parent.mode & 0o022) !== 0 && (parent.mode & S_ISVTX) === 0) return 'its directory is writable by others';
      if (what === 'tree') {
        removeTreeAt(parentFd, name);
        return 'removed';
      }
      try {
        unlinkat(parentFd, name, AT_REMOVEDIR);
        return 'removed';
      } catch (err) {
        // Something was put in it since: no longer the build's alone.
        if (err instanceof SyscallError && err.errno === ERRNO.ENOTEMPTY) return 'not empty';
        if (isMissing(err)) return 'absent';
        throw err;
      }
    } finally {
      close(parentFd);
    }
  } finally {
    close(rootFd);
  }
}

let boot: string | undefined;

/** This boot's id: pids and start times of another boot mean nothing. */
function bootId(): string {
  boot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return boot;
}

/** A process's start time (clock ticks since boot, field 22 of /proc/PID/stat), or undefined when it is gone. */
function startTimeOf(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}
