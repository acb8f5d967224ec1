// `stockade seccomp export POLICY [--format pfc|bpf|json]`: prints a policy's seccomp filter.
import { planFromFile } from '../plan/index.js';
import { SECCOMP_USAGE, exportCommand, parseSeccompArgs } from '../seccomp/export-command.js';

export async function main(argv: string[]): Promise<number> {
  const command = parseSeccompArgs(argv);
  if (command.kind === 'help') {
    process.stdout.write(SECCOMP_USAGE + '\n');
    return 0;
  }
  if (command.kind === 'usage-error') {
    process.stderr.write(`stockade seccomp: ${command.message}\n\n${SECCOMP_USAGE}\n`);
    return 2;
  }
  process.stdout.write(exportCommand(planFromFile(command.policy), command.format));
  return 0;
}
