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
import { isMissing, openBeneath, openRoot, PathRefused, splitUnderRoot } from '../ffi/resolve.js';
import { describeOrigin } from '../plan/describe.js';
import type { BindMount, Plan } from '../plan/types.js';
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

/** `origin: source PATH: why`, naming the setting that asked for the source. */
function sourceError(m: BindMount, path: string, err: unknown): string {
  const why = isMissing(err) ? 'No such file or directory' : err instanceof Error ? err.message : String(err);
  return `${m.origin ? `${describeOrigin(m.origin)}: ` : `${m.role} `}source ${path}: ${why}`;
}

/**
 * Opens the source of every bind of the Plan but the build directory's and the outputs'
 * (openBuildDirSources, once they exist). Throws InputRefused for an input the spec may not
 * use, and an error naming the setting (FILE:LINE:COL) for any other source that cannot be
 * opened; whatever it throws, it has closed what it opened.
 */
export function openBindSources(plan: Plan, trees: Readonly<Record<string, number>> = {}): BindSources {
  const sources = new BindSources(plan.mounts.length);
  // Each root opened once, however many inputs lie under it: the cost stays linear in the inputs.
  const roots = new Map<string, number>();
  try {
    for (const [i, m] of plan.mounts.entries()) {
      if (m.type !== 'bind') continue;
      const source = m.source;
      switch (source.kind) {
        case 'input':
          sources.fds[i] = openInput(m, source.path, plan.build.inputsUnder, roots);
          break;
        case 'host':
          try {
            sources.fds[i] = openRoot(source.path);
          } catch (err) {
            if (!(isMissing(err) && m.optional)) throw new Error(sourceError(m, source.path, err));
          }
          break;
        case 'build-dir':
        case 'outputs-dir':
          break;
        case 'tree':
          // The caller's own fd, opened beneath its root: a fresh one, closed with the others.
          if (!Object.hasOwn(trees, source.name)) throw new Error(`bind of ${m.target}: the caller gave no tree ${JSON.stringify(source.name)}`);
          sources.fds[i] = openBeneath(trees[source.name], '', OPEN_FLAGS.O_PATH);
          break;
        default: {
          const unknown: never = source;
          throw new Error(`no way to open the bind source ${JSON.stringify(unknown)}`);
        }
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

function openInput(m: BindMount, input: string, under: readonly string[], roots: Map<string, number>): number {
  const field = m.origin ? `${describeOrigin(m.origin)}: ` : '';
  const split = splitUnderRoot(input, under);
  if (!split) throw new InputRefused(`${field}input ${input}: not under filesystem.inputs.under (${under.join(', ') || 'nothing allowed'})`);
  let rootFd = roots.get(split.root);
  if (rootFd === undefined) {
    try {
      rootFd = openRoot(split.root);
    } catch (err) {
      if (isMissing(err)) throw new InputRefused(`${field}input ${input}: its root ${split.root}: No such file or directory`);
      throw err;
    }
    roots.set(split.root, rootFd);
  }
  try {
    return openBeneath(rootFd, split.relative, OPEN_FLAGS.O_PATH, { label: `input ${input}` });
  } catch (err) {
    if (err instanceof PathRefused) throw new InputRefused(`${field}${err.message}`);
    if (isMissing(err)) throw new InputRefused(`${field}input ${input}: No such file or directory`);
    throw err;
  }
}

/** Opens the build directory's `top` and the outputs directories (root-made, in a root-only 0700 directory). */
export function openBuildDirSources(sources: BindSources, plan: Plan, dir: BuildDir): void {
  for (const [i, m] of plan.mounts.entries()) {
    if (m.type !== 'bind') continue;
    if (m.source.kind === 'build-dir') sources.fds[i] = openRoot(dir.top);
    else if (m.source.kind === 'outputs-dir') {
      const host = dir.outputDirs[m.source.index];
      if (host === undefined) throw new Error(`no host directory for the outputs directory ${m.target}`);
      sources.fds[i] = openRoot(host);
    }
  }
}
