// stockade diff OLD NEW: how the sandbox changes between two policies, for review gates.
import { command, parse, UsageError } from './args.js';
import type { AuditReport } from '../audit/types.js';
import type { Plan } from '../plan/types.js';

const HELP = `usage: stockade diff [--json] [--policies DIR] OLD NEW

Plans the example build under both policies and compares the two Plans (not the YAML text):
every change to inputs.under, outputs.under, mounts, devices, /etc, network, host name,
environment, capabilities, no_new_privs, seccomp, Landlock, limits, timeouts, identity,
personality and oom_score_adj, each marked weakening, strengthening or neutral, with the
exposure score before and after. The audit's rules decide too (section 'audit'): a finding
of a weighed rule that OLD lacks, or a rule scoring more, is a weakening, so whatever raises
the exposure score is one.

options:
  --json            print {old, new, changes: [{section, effect, description}], weakenings}
  --policies DIR    where 'extends: NAME' is looked up (default: the shipped policies)
  -h, --help        show this help

exit status: 0 nothing weakens, 1 something weakens or a policy is invalid, 2 usage error`;

const MARKS = { weakening: '-', strengthening: '+', neutral: '~' } as const;
const COLOURS = { weakening: '31', strengthening: '32', neutral: '2' } as const;

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const args = parse(argv, { json: { type: 'boolean' }, policies: { type: 'string' } }, HELP);
    if (!args) return 0;
    if (args.positionals.length !== 2) throw new UsageError('diff needs exactly two policy files: OLD NEW');
    const { loadPolicy } = await import('../policy/load.js');
    const { PolicyError, formatDiagnostic } = await import('../policy/errors.js');
    const { auditPlan, planForAudit } = await import('../audit/index.js');
    const { diffFindings, diffPlans } = await import('../audit/diff.js');
    const { paint } = await import('../audit/format/text.js');
    const sides: { file: string; plan: Plan; report: AuditReport }[] = [];
    for (const file of args.positionals) {
      try {
        const loaded = loadPolicy(file, { policiesDir: args.values.policies });
        const plan = planForAudit(loaded);
        sides.push({ file, plan, report: auditPlan(plan, loaded, file) });
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err;
        for (const d of err.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
        return 1;
      }
    }
    const [before, after] = sides;
    const changes = [...diffPlans(before.plan, after.plan), ...diffFindings(before.report, after.report)];
    const weakenings = changes.filter((c) => c.effect === 'weakening').length;
    const side = (s: (typeof sides)[number]) => ({ file: s.file, policy: s.report.policyName, score: s.report.score, level: s.report.level });
    if (args.values.json) {
      process.stdout.write(JSON.stringify({ old: side(before), new: side(after), changes, weakenings }, null, 2) + '\n');
    } else {
      const colour = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
      const out = [
        `${before.file} → ${after.file}`,
        `exposure ${before.report.score.toFixed(1)} ${before.report.level} → ${after.report.score.toFixed(1)} ${after.report.level}`,
      ];
      if (changes.length === 0) out.push('  no change to the sandbox');
      for (const c of changes) out.push(paint(`  ${MARKS[c.effect]} ${c.effect.padEnd(13)} ${c.section}: ${c.description}`, COLOURS[c.effect], colour));
      const count = (effect: string) => changes.filter((c) => c.effect === effect).length;
      out.push(`${weakenings} weakening, ${count('strengthening')} strengthening, ${count('neutral')} neutral`);
      process.stdout.write(out.join('\n') + '\n');
    }
    return weakenings > 0 ? 1 : 0;
  });
}
