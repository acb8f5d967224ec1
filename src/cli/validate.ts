// stockade validate FILE…: exit 0 when every policy is valid, 1 when one is not, 2 on bad usage.
import { command, parse, UsageError } from './args.js';

const HELP = `usage: stockade validate [--json] [--policies DIR] FILE…

Checks policy files against the policy language: YAML syntax, keys, types, paths, device
and syscall names, impossible combinations, and everything they extend. Every problem is
printed as FILE:LINE:COL: message.

options:
  --json            print one JSON object: {"valid": bool, "files": [{file, valid, errors}]}
  --policies DIR    where 'extends: NAME' is looked up after the policy's own directory
                    (default: the shipped policies)
  -h, --help        show this help

exit status: 0 all valid, 1 some invalid, 2 usage error`;

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const args = parse(argv, { json: { type: 'boolean' }, policies: { type: 'string' } }, HELP);
    if (!args) return 0;
    if (args.positionals.length === 0) throw new UsageError('validate needs at least one policy file');
    const { loadPolicy } = await import('../policy/load.js');
    const { PolicyError, formatDiagnostic } = await import('../policy/errors.js');
    const results = args.positionals.map((file) => {
      try {
        loadPolicy(file, { policiesDir: args.values.policies });
        return { file, valid: true, errors: [] as { file: string; line: number; col: number; message: string }[] };
      } catch (err) {
        if (err instanceof PolicyError) return { file, valid: false, errors: err.diagnostics };
        throw err;
      }
    });
    if (args.values.json) {
      process.stdout.write(JSON.stringify({ valid: results.every((r) => r.valid), files: results }, null, 2) + '\n');
    } else {
      for (const r of results) {
        if (r.valid) process.stdout.write(`${r.file}: valid\n`);
        else for (const d of r.errors) process.stderr.write(formatDiagnostic(d) + '\n');
      }
    }
    return results.every((r) => r.valid) ? 0 : 1;
  });
}
