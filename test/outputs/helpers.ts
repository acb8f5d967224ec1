// Shared by the output tests: how a test build names its output, and what it may leave behind.
import { basename } from 'node:path';
import { leftovers, type Sandbox } from '../runtime/helpers.js';

/** The output, also as $OUT for the builder's script; the build is named after its sandbox. */
export function outputArgs(sb: Sandbox, out: string): string[] {
  return ['--output', out, '--env', `OUT=${out}`, '--name', basename(sb.dir)];
}

/** leftovers(), minus the cgroups of other test runs on this machine (they are named after their builds). */
export function ownLeftovers(sb: Sandbox): string[] {
  const name = basename(sb.dir);
  return leftovers(sb).flatMap((found) => {
    if (!found.startsWith('cgroups under ')) return [found];
    const [where, groups] = found.split(': ');
    const own = groups.split(' ').filter((g) => g.startsWith(`${name}-`));
    return own.length ? [`${where}: ${own.join(' ')}`] : [];
  });
}

