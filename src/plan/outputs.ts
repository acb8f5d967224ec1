// Where outputs are made: as under guix-daemon, the builder creates each declared output itself
// (a file, a directory or a symlink) in its directory, which the sandbox holds as a fresh,
// private directory (the build's own /gnu/store); only the declared names are handed over.
import { posix } from 'node:path';

/** The directories the outputs are made in, each once, in the order of the outputs that name them first. */
export function outputDirs(outputs: readonly string[]): string[] {
  return [...new Set(outputs.map((output) => posix.dirname(output)))];
}
