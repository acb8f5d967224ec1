// The plan cache of `stockade run`: a policy loaded once (parsed, merged, validated, its seccomp
// filter planned) is kept, and a later run of the same unchanged policy plans from that copy
// without loading the YAML parser or the validator, most of a cold run's CPU otherwise.
//
// An entry is keyed by the policy file as named and the directory it is named from. It holds
// the content hashes of the files the load read (the policy and its `extends` chain; a policy
// with a seccomp.profile is not cached), the places an `extends` looked in vain, the schema's
// hash, Stockade's version and its build, and is used only while all still match.
// The directory is root's alone (0700): entries are trusted as root's own writes once read as
// bounded regular files, each prefixed by the hash of its body, so that a torn or corrupt one
// is ignored (and rewritten). `validate` and `explain` never use it: they always parse.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, fchmodSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeSeccompArch } from '../ffi/arch.js';
import type { LoadedPolicy, Origin } from '../policy/load.js';
import { readBoundedText } from '../policy/read.js';
import type { BuildSpec } from '../policy/types.js';
import { plan, type PlanInput } from './plan.js';
import type { Plan } from './types.js';

export const DEFAULT_PLAN_CACHE_DIR = '/var/lib/stockade/plan-cache';
/** Larger entries are neither written nor read: a policy file is at most 1 MiB, a chain 16 files. */
export const MAX_ENTRY_BYTES = 8 * 1024 * 1024;
/** More entries than this and the directory is emptied before the next is written. */
const MAX_ENTRIES = 1000;
/** Bumped whenever an entry's layout changes. */
const FORMAT = 1;

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMA_FILE = `${PACKAGE_ROOT}schemas/policy.schema.json`;

interface Entry {
  format: number;
  stockade: string;
  files: { path: string; sha256: string }[];
  basesNotFound: string[];
  loaded: {
    policy: PlanInput['policy'];
    chain: string[];
    seccomp: PlanInput['seccomp'];
    /** [pointer, file, line, col] */
    origins: [string, string, number, number][];
  };
}

export type CacheOutcome = 'hit' | 'miss' | 'off';

export interface PlanForRunOptions {
  spec: BuildSpec;
  specSource?: string;
  policiesDir?: string;
  callerEnv?: Record<string, string | undefined>;
  /** The cache directory; undefined: no cache. */
  cacheDir?: string;
  onNotice?: (message: string) => void;
}

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** What every entry must have been made by: this Stockade (version and build) and schema. */
function stockadeIdentity(): string {
  const version = (JSON.parse(readFileSync(`${PACKAGE_ROOT}package.json`, 'utf8')) as { version: string }).version;
  // Built with the loader, this file changes with every build: a rebuilt Stockade uses no entry of another build.
  const build = statSync(fileURLToPath(import.meta.url));
  return `${version} schema:${sha256(readFileSync(SCHEMA_FILE))} build:${build.size}:${build.mtimeMs}:${build.ino}`;
}

function entryName(file: string, policiesDir: string | undefined): string {
  // The cwd too: the chain and the Plan name the files as given, relative paths included.
  return `${sha256(JSON.stringify([FORMAT, resolve(file), process.cwd(), policiesDir ?? null]))}.json`;
}

function hashOf(path: string): string | undefined {
  try {
    return sha256(readBoundedText(path));
  } catch {
    return undefined;
  }
}

/**
 * The cache directory, opened; made 0700 when missing. Returns a reason instead when it is not a
 * directory owned by root with mode 0700 (then it is not used).
 */
function openDir(dir: string): number | string {
  mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
  let made = false;
  try {
    mkdirSync(dir, { mode: 0o700 });
    made = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  // mkdir's mode went through the umask.
  if (made) fchmodSync(fd, 0o700);
  const stats = fstatSync(fd);
  if (stats.uid === 0 && (stats.mode & 0o7777) === 0o700) return fd;
  closeSync(fd);
  return `owned by uid ${stats.uid} with mode 0${(stats.mode & 0o7777).toString(8)}, not root's with mode 0700`;
}

/** An entry's text, if it is a regular file of at most MAX_ENTRY_BYTES, read through the directory's fd. */
function readEntry(dirFd: number, name: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(`/proc/self/fd/${dirFd}/${name}`, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    return undefined;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.size > MAX_ENTRY_BYTES) return undefined;
    const buffer = Buffer.allocUnsafe(stats.size);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}

/** The loaded policy an entry holds, if its hash checks and everything it was made from is unchanged. */
function validEntry(text: string, identity: string): PlanInput | undefined {
  const newline = text.indexOf('\n');
  if (newline < 0) return undefined;
  const body = text.slice(newline + 1);
  if (sha256(body) !== text.slice(0, newline)) return undefined;
  let entry: Entry;
  try {
    entry = JSON.parse(body) as Entry;
  } catch {
    return undefined;
  }
  if (entry.format !== FORMAT || entry.stockade !== identity) return undefined;
  if (!entry.files.every((f) => hashOf(f.path) === f.sha256)) return undefined;
  if (entry.basesNotFound.some((path) => existsSync(path))) return undefined;
  const { policy, chain, seccomp, origins } = entry.loaded;
  return { policy, chain, seccomp, origins: new Map(origins.map(([pointer, file, line, col]): [string, Origin] => [pointer, { file, line, col }])) };
}

function entryOf(loaded: LoadedPolicy, identity: string): Entry | undefined {
  // A seccomp.profile is read by its importer, which keeps no hash of what it read: an edit
  // racing the load could not be told from the profile loaded, so such policies are not cached.
  if (loaded.seccompProfile) return undefined;
  const files: Entry['files'] = loaded.chain.map((path, i) => ({ path, sha256: loaded.chainHashes[i] }));
  return {
    format: FORMAT,
    stockade: identity,
    files,
    basesNotFound: loaded.basesNotFound,
    loaded: {
      policy: loaded.policy,
      chain: loaded.chain,
      seccomp: loaded.seccomp,
      origins: [...loaded.origins].map(([pointer, o]) => [pointer, o.file, o.line, o.col]),
    },
  };
}

/** Writes an entry whole or not at all: a fresh file in the directory, renamed over the old one. */
function writeEntry(dirFd: number, name: string, entry: Entry): void {
  const body = JSON.stringify(entry);
  const text = `${sha256(body)}\n${body}`;
  if (Buffer.byteLength(text) > MAX_ENTRY_BYTES) return;
  const dir = `/proc/self/fd/${dirFd}`;
  const names = readdirSync(dir);
  if (names.length >= MAX_ENTRIES) for (const old of names) unlinkSync(`${dir}/${old}`);
  const temporary = `.${name}.${randomBytes(8).toString('hex')}`;
  const fd = openSync(`${dir}/${temporary}`, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    renameSync(`${dir}/${temporary}`, `${dir}/${name}`);
  } catch (err) {
    try {
      unlinkSync(`${dir}/${temporary}`);
    } catch {
      // Renamed already, or never made.
    }
    throw err;
  }
}

/**
 * Plans a build of the policy `file` for this host, from the cache when it holds the policy
 * unchanged, loading (and caching) it otherwise. Errors of the policy and the spec are thrown as
 * loadPolicy and plan throw them; a cache that cannot be used is only noticed.
 */
export async function planForRun(file: string, options: PlanForRunOptions): Promise<{ plan: Plan; cache: CacheOutcome }> {
  const notice = options.onNotice ?? (() => {});
  let dirFd: number | undefined;
  let identity = '';
  let name = '';
  let input: PlanInput | undefined;
  if (options.cacheDir !== undefined) {
    try {
      const opened = openDir(options.cacheDir);
      if (typeof opened === 'string') notice(`plan cache ${options.cacheDir} not used: ${opened}`);
      else {
        dirFd = opened;
        identity = stockadeIdentity();
        name = entryName(file, options.policiesDir);
        const text = readEntry(dirFd, name);
        input = text === undefined ? undefined : validEntry(text, identity);
      }
    } catch (err) {
      notice(`plan cache ${options.cacheDir} not used: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const cache: CacheOutcome = dirFd === undefined ? 'off' : input ? 'hit' : 'miss';
  try {
    if (!input) {
      const { loadPolicy } = await import('../policy/load.js');
      const loaded = loadPolicy(file, { policiesDir: options.policiesDir });
      input = loaded;
      if (dirFd !== undefined) {
        try {
          const entry = entryOf(loaded, identity);
          if (entry) writeEntry(dirFd, name, entry);
        } catch (err) {
          notice(`plan cache ${options.cacheDir}: entry not written: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
  }
  const planned = plan(input, options.spec, { callerEnv: options.callerEnv, specSource: options.specSource, nativeArch: nativeSeccompArch() });
  return { plan: planned, cache };
}
