// Checks of the paths a build spec names, made on the host before anything is set up: the
// builder must resolve inside the build's inputs, and output paths are compared resolved.
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Plan } from '../plan/types.js';
import { isUnder } from '../policy/semantics.js';

/** A builder the sandbox could not run as it is: the spec is refused before the build. */
export class BuilderRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuilderRefused';
  }
}

/** At most as many symlinks as the kernel follows in one lookup (MAXSYMLINKS). */
const MAX_BUILDER_LINKS = 40;

/**
 * guix's defence against CVE-2019-5736: the builder must resolve inside the build's inputs, and
 * so must every symlink on its way, or it would dangle in the sandbox (/usr/bin/awk ->
 * /etc/alternatives/awk with only /usr bound in). Directories are resolved as the host has them.
 */
export function checkBuilder(plan: Plan): void {
  const roots = [
    ...plan.build.inputs,
    ...plan.mounts.flatMap((m) => (m.type === 'bind' && m.role === 'path' && m.readonly && m.source.kind === 'host' && m.source.path === m.target ? [m.target] : [])),
  ].flatMap((p) => (existsSync(p) ? [realpathSync(p)] : []));
  const inputs = `the build's inputs (${plan.build.inputs.join(', ') || 'none'})`;
  const builder = plan.build.builder;
  let path = builder;
  let link: { from: string; to: string } | undefined;
  for (let hops = 0; ; hops++) {
    const via = link ? `, through the symlink ${link.from} -> ${link.to},` : '';
    let here: string;
    try {
      here = join(realpathSync(dirname(path)), basename(path));
    } catch {
      throw new BuilderRefused(link ? `builder ${builder}${via} dangles: ${path} does not exist on the host` : `builder ${builder}: no such file on the host`);
    }
    if (!roots.some((root) => isUnder(here, root))) {
      throw new BuilderRefused(link
        ? `builder ${builder} is a symlink${link.from === builder ? '' : ` chain through ${link.from}`} to ${link.to}, outside ${inputs}: it would dangle in the sandbox`
        : `builder ${builder} resolves to ${here}, outside ${inputs}`);
    }
    const st = lstatSync(here, { throwIfNoEntry: false });
    if (!st) throw new BuilderRefused(link ? `builder ${builder}${via} dangles: ${here} does not exist on the host` : `builder ${builder}: no such file on the host`);
    if (!st.isSymbolicLink()) return;
    if (hops >= MAX_BUILDER_LINKS) throw new BuilderRefused(`builder ${builder}: more than ${MAX_BUILDER_LINKS} symlinks on its way`);
    path = resolve(dirname(here), readlinkSync(here));
    link = { from: here, to: path };
  }
}

/** `path` with every symlink of its existing part resolved; the missing rest kept as written. */
export function resolvePath(path: string): string {
  let existing = path;
  // lstat: a dangling symlink counts as existing, so realpath refuses it rather than skipping it.
  while (!lexists(existing)) existing = dirname(existing);
  const rest = path.slice(existing.length).replace(/^\/+/, '');
  return rest ? join(realpathSync(existing), rest) : realpathSync(existing);
}

function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

