// The supervisor's half of "mount what was checked": every bind source of the Plan is opened
// once (O_PATH) here, and init mounts the opened object, never the path again (request.ts).
//
// Inputs come from the spec: each is opened beneath the `filesystem.inputs.under` root it lies
// under, refusing a symlink in any component (a build can plant one in a store directory that
// is both an input and an output root). The roots themselves, `filesystem.paths` sources, device
// nodes and `/etc` host files are the admin's: they are opened as written, following the
// symlinks the admin chose (/bin -> usr/bin, /etc/resolv.conf -> ../run/...); they lie where
// builds cannot write, and the object they led to at open time is the one mounted.
import { OPEN_FLAGS } from '../ffi/arch.js';
import { close } from '../ffi/libc.js';
import { isMissing, openBeneath, openRoot, PathRefused, reopen, splitUnderRoot } from '../ffi/resolve.js';
import { outputDirs } from '../plan/outputs.js';
import type { Plan } from '../plan/types.js';
import type { BuildDir } from './builddir.js';
import type { MountSources } from './request.js';

/** An input the spec may not use as it is (missing, a symlink on its way, or under no allowed root). */
export class InputRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputRefused';
  }
}

/** The fds of the Plan's bind sources, by mount index; closed once init no longer needs them. */
export class BindSources {
  readonly fds: (number | null)[];
  private closed = false;

  constructor(count: number) {
    this.fds = new Array<number | null>(count).fill(null);
  }

  forInit(): MountSources {
    return { pid: process.pid, fds: this.fds };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.fds) if (fd !== null) close(fd);
  }
}

function missing(what: string): Error {
  return new Error(`${what} does not exist (ENOENT)`);
}

/**
 * Opens the source of every bind of the Plan but the build directory's and the outputs'
 * (openBuildDirSources, once they exist). Throws InputRefused for an input the spec may not
 * use; whatever it throws, it has closed what it opened.
 */
export function openBindSources(plan: Plan, trees: Readonly<Record<string, number>> = {}): BindSources {
  const sources = new BindSources(plan.mounts.length);
  // Each root opened once, however many inputs lie under it: the cost stays linear in the inputs.
  const roots = new Map<string, number>();
  try {
    for (const [i, m] of plan.mounts.entries()) {
      if (m.type !== 'bind' || m.source === '{build_dir_host}' || m.source === '{outputs_dir_host}' || Object.hasOwn(trees, m.source)) continue;
      if (m.role === 'input') {
        sources.fds[i] = openInput(m.source, plan.build.inputsUnder, roots);
        continue;
      }
      try {
        sources.fds[i] = openRoot(m.source);
      } catch (err) {
        if (!isMissing(err)) throw err;
        if (!m.optional) throw missing(`${m.role} ${m.source}`);
      }
    }
    return sources;
  } catch (err) {
    sources.close();
    throw err;
  } finally {
    for (const fd of roots.values()) close(fd);
  }
}

function openInput(input: string, under: readonly string[], roots: Map<string, number>): number {
  const split = splitUnderRoot(input, under);
  if (!split) throw new InputRefused(`input ${input}: not under filesystem.inputs.under (${under.join(', ') || 'nothing allowed'})`);
  let rootFd = roots.get(split.root);
  if (rootFd === undefined) {
    try {
      rootFd = openRoot(split.root);
    } catch (err) {
      if (isMissing(err)) throw new InputRefused(missing(`input ${input}: its root ${split.root}`).message);
      throw err;
    }
    roots.set(split.root, rootFd);
  }
  try {
    return openBeneath(rootFd, split.relative, OPEN_FLAGS.O_PATH, { label: `input ${input}` });
  } catch (err) {
    if (err instanceof PathRefused) throw new InputRefused(err.message);
    if (isMissing(err)) throw new InputRefused(missing(`input ${input}`).message);
    throw err;
  }
}

/**
 * Opens the build directory's `top` and the outputs directories (root-made, in a root-only 0700
 * directory), and takes its own fd of each caller's tree (RunOptions.trees).
 */
export function openBuildDirSources(sources: BindSources, plan: Plan, dir: BuildDir, trees: Readonly<Record<string, number>> = {}): void {
  const hosts = new Map(outputDirs(plan.build.outputs).map((target, i) => [target, dir.outputDirs[i]]));
  for (const [i, m] of plan.mounts.entries()) {
    if (m.type !== 'bind') continue;
    if (Object.hasOwn(trees, m.source)) sources.fds[i] = reopen(trees[m.source], OPEN_FLAGS.O_PATH);
    else if (m.source === '{build_dir_host}') sources.fds[i] = openRoot(dir.top);
    else if (m.source === '{outputs_dir_host}') {
      const host = hosts.get(m.target);
      if (host === undefined) throw new Error(`no host directory for the outputs directory ${m.target}`);
      sources.fds[i] = openRoot(host);
    }
  }
}
