// Bounded reads of the files Stockade is pointed at (policies, their bases, seccomp profiles,
// build specs): a device (`extends: /dev/zero`), a FIFO or a huge file must not exhaust memory
// or time. Each file is opened once and checked and read through that one fd.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** The most bytes read from any one such file. */
export const MAX_FILE_BYTES = 1024 * 1024;

/** Why a file was not read; the message says what is wrong but not which file (callers name it). */
export class FileRefused extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
    this.name = 'FileRefused';
  }
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function tooLarge(limit: number): FileRefused {
  return new FileRefused(`larger than the limit of ${limit === MAX_FILE_BYTES ? '1 MiB' : `${limit} bytes`} (${limit} bytes)`);
}

/** Reads a regular file of at most `limit` bytes as UTF-8; throws a FileRefused otherwise. */
export function readBoundedText(file: string, limit = MAX_FILE_BYTES): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new FileRefused(e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message, e.code);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new FileRefused(`not a regular file (${kindOf(stats)})`);
    if (stats.size > limit) throw tooLarge(limit);
    // Read up to one byte past the limit: a file may have grown since fstat, and procfs says size 0.
    let buffer = Buffer.allocUnsafe(Math.min(stats.size, limit) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length > limit) throw tooLarge(limit);
        const grown = Buffer.allocUnsafe(limit + 1);
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) return buffer.toString('utf8', 0, length);
      length += n;
    }
  } catch (err) {
    if (err instanceof FileRefused) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new FileRefused(e.code === 'EISDIR' ? 'not a regular file (a directory)' : e.message, e.code);
  } finally {
    closeSync(fd);
  }
}
