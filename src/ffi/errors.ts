import { errnoName } from './arch.js';

/**
 * The one error type of the FFI layer: it names the call, its arguments rendered
 * readably, and errno's name and text, e.g.
 * `mount("/gnu/store" -> "/tmp/x/gnu/store", MS_BIND|MS_REC): ENOENT (No such file or directory)`.
 */
export class SyscallError extends Error {
  readonly call: string;
  readonly args: string;
  readonly errno: number;
  readonly code: string;

  constructor(call: string, args: string, errno: number, text: string) {
    super(`${call}(${args}): ${errnoName(errno)} (${text})`);
    this.name = 'SyscallError';
    this.call = call;
    this.args = args;
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

/** Renders a string argument as C would show it: quoted, with escapes. */
export function quote(value: string | null): string {
  return value === null ? 'NULL' : JSON.stringify(value);
}

/** Renders a bit mask as `A|B|0x40` from a table of named flags. */
export function renderFlags(value: number | bigint, table: Readonly<Record<string, number | bigint>>): string {
  let rest = BigInt(value);
  if (rest === 0n) return '0';
  const names: string[] = [];
  for (const [name, bit] of Object.entries(table)) {
    const b = BigInt(bit);
    if (b !== 0n && (rest & b) === b) {
      names.push(name);
      rest &= ~b;
    }
  }
  if (rest !== 0n) names.push(`0x${rest.toString(16)}`);
  return names.join('|');
}

/** Renders one value of an enumeration (not a bit mask) by its name, or the number when unnamed. */
export function renderEnum(value: number, table: Readonly<Record<string, number>>): string {
  for (const [name, v] of Object.entries(table)) if (v === value) return name;
  return String(value);
}

/** Renders a file mode in octal, as chmod(1) takes it. */
export function renderMode(mode: number): string {
  return `0${mode.toString(8)}`;
}
