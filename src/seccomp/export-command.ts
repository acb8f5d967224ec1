// The policy-independent half of `stockade seccomp export`: argument parsing and the export
// itself, so both can be tested without a policy file.
import { parseArgs } from 'node:util';
import type { Plan } from '../plan/types.js';
import { SECCOMP_EXPORT_FORMATS, exportSeccomp, type SeccompExportFormat } from './compile.js';

export const SECCOMP_USAGE = `usage: stockade seccomp export POLICY [--format pfc|bpf|json]

Prints the seccomp filter a policy compiles to, for review:
  pfc   libseccomp's pseudo filter code, one section per architecture (default)
  bpf   the raw BPF program the kernel is given
  json  the normalised rules (architectures resolved, skipped syscalls listed)

options:
  -f, --format FORMAT   pfc, bpf or json
  -h, --help            show this help`;

export type SeccompCommand =
  | { kind: 'help' }
  | { kind: 'usage-error'; message: string }
  | { kind: 'export'; policy: string; format: SeccompExportFormat };

export function parseSeccompArgs(argv: string[]): SeccompCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { format: { type: 'string', short: 'f', default: 'pfc' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    return { kind: 'usage-error', message: (err as Error).message };
  }
  if (parsed.values.help) return { kind: 'help' };
  const [sub, policy, ...extra] = parsed.positionals;
  if (sub !== 'export') return { kind: 'usage-error', message: sub === undefined ? 'missing subcommand' : `unknown subcommand '${sub}'` };
  if (policy === undefined) return { kind: 'usage-error', message: 'missing POLICY' };
  if (extra.length > 0) return { kind: 'usage-error', message: `unexpected argument '${extra[0]}'` };
  const format = parsed.values.format as SeccompExportFormat;
  if (!SECCOMP_EXPORT_FORMATS.includes(format)) {
    return { kind: 'usage-error', message: `unknown format '${format}' (pfc, bpf or json)` };
  }
  return { kind: 'export', policy, format };
}

/** The export of a resolved Plan's filter; throws when the policy has none. */
export function exportCommand(plan: Pick<Plan, 'policy' | 'seccomp'>, format: SeccompExportFormat): Buffer {
  if (plan.seccomp === null) throw new Error(`policy '${plan.policy.name}' (${plan.policy.file}) has no seccomp filter`);
  return exportSeccomp(plan.seccomp, format);
}
