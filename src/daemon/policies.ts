// The policies the daemon serves: every NAME.yaml of one directory, loaded and validated ahead,
// re-read when a file of the directory (or of an extends chain, or a seccomp.profile) changes,
// or on demand (SIGHUP).
// A policy that stops validating keeps its last good version, and the reason is logged.
import { readdirSync, watch, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import { POLICY_NAME_PATTERN } from '../policy/lists.js';
import { loadPolicy, type LoadedPolicy } from '../policy/load.js';

// The name pattern without its anchors, then the extension.
const NAME = new RegExp(`^(${POLICY_NAME_PATTERN.slice(1, -1)})\\.ya?ml$`);
/** Editors write a file in several steps; one reload after they settle. */
const SETTLE_MS = 100;

export interface PolicyEntry {
  name: string;
  file: string;
  loaded: LoadedPolicy;
}

/** Every file a policy is made of: its extends chain and its seccomp.profile. */
function filesOf(loaded: LoadedPolicy): string[] {
  return loaded.seccompProfile ? [...loaded.chain, loaded.seccompProfile.path] : loaded.chain;
}

/** What builds get from a loaded policy. */
function served(loaded: LoadedPolicy): unknown {
  return { policy: loaded.policy, chain: loaded.chain, seccomp: loaded.seccompProfile?.filter };
}

export class PolicyCache {
  private entries = new Map<string, PolicyEntry>();
  private watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly log: (message: string) => void,
  ) {}

  get(name: string): PolicyEntry | undefined {
    return this.entries.get(name);
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Reads every policy file again; returns how many are served. */
  reload(): number {
    let files: string[];
    try {
      files = readdirSync(this.dir).filter((f) => NAME.test(f)).sort();
    } catch (err) {
      this.log(`policies: cannot read ${this.dir}: ${(err as Error).message}; keeping ${this.entries.size} loaded policies`);
      return this.entries.size;
    }
    const seen = new Set<string>();
    for (const file of files) {
      const name = NAME.exec(file)![1];
      if (seen.has(name)) {
        this.log(`policies: ${join(this.dir, file)} ignored: policy '${name}' is already defined by another file`);
        continue;
      }
      seen.add(name);
      const path = join(this.dir, file);
      const previous = this.entries.get(name);
      try {
        const loaded = loadPolicy(path, { policiesDir: this.dir });
        const changed = !previous || JSON.stringify(served(previous.loaded)) !== JSON.stringify(served(loaded));
        this.entries.set(name, { name, file: path, loaded });
        if (changed) this.log(`policies: ${previous ? 'reloaded' : 'loaded'} '${name}' from ${path}`);
      } catch (err) {
        const why = (err as Error).message;
        this.log(previous
          ? `policies: ${path} is invalid, keeping the last good version of '${name}':\n${why}`
          : `policies: ${path} is invalid, policy '${name}' is not served:\n${why}`);
      }
    }
    for (const name of [...this.entries.keys()]) {
      if (!seen.has(name)) {
        this.entries.delete(name);
        this.log(`policies: '${name}' removed (its file is gone)`);
      }
    }
    this.watchChains();
    return this.entries.size;
  }

  /** Watches the policies directory and the directories of every file the policies extend or import. */
  watch(): void {
    this.watchDir(this.dir);
    this.watchChains();
  }

  close(): void {
    clearTimeout(this.timer);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  private watchChains(): void {
    if (this.watchers.size === 0) return;
    for (const entry of this.entries.values()) for (const file of filesOf(entry.loaded)) this.watchDir(dirname(file));
  }

  private watchDir(dir: string): void {
    if (this.watchers.has(dir)) return;
    try {
      const watcher = watch(dir, { persistent: false }, () => {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.reload(), SETTLE_MS);
      });
      watcher.on('error', (err) => this.log(`policies: watching ${dir} failed: ${err.message}; SIGHUP still reloads`));
      this.watchers.set(dir, watcher);
    } catch (err) {
      this.log(`policies: cannot watch ${dir}: ${(err as Error).message}; SIGHUP still reloads`);
    }
  }
}
