// Shared argument handling: node:util parseArgs, `--help` on every command, usage errors exit 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed<O extends Options> {
  values: { [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { multiple: true } ? string[] : string };
  positionals: string[];
}

/** Parses argv; prints help and returns undefined for --help; throws UsageError on bad usage. */
export function parse<O extends Options>(argv: string[], options: O, help: string): Parsed<O> | undefined {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help.trimEnd() + '\n');
    return undefined;
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as Parsed<O>['values'], positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Runs a command body, turning UsageError into exit status 2 with the usage line. */
export async function command(help: string, body: () => Promise<number> | number): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`stockade: ${err.message}\n${help.split('\n')[0]}\n`);
      return 2;
    }
    throw err;
  }
}
