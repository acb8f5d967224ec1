// stockade audit FILE…: findings and an exposure score per policy, as text, JSON or SARIF,
// with exit status gates for CI.
import { readFileSync } from 'node:fs';
import { command, parse, UsageError } from './args.js';

const HELP = `usage: stockade audit [--json | --sarif] [--verbose] [--fail-above SCORE] [--fail-on SEVERITY]
                      [--policies DIR] FILE…
       stockade audit --list-rules [--json]

Audits policy files: plans the example build of each, runs every audit rule on the Plan, and
prints the findings, each as FILE:LINE:COL: SEVERITY ID message at the YAML node that causes it
(following 'extends' to the file that set the value), grouped by concern, with an exposure score
from 0.0 (sealed) to 10.0 (no isolation) and its level (PERFECT SAFE OK MEDIUM EXPOSED UNSAFE
DANGEROUS). Weights and levels: docs/audit.md.

options:
  --json                 print the reports as JSON
  --sarif                print SARIF 2.1.0 (for code scanning on pull requests)
  --verbose              also say why each finding matters and how to fix it
  --fail-above SCORE     exit 1 when a policy's score is above SCORE (0-10)
  --fail-on SEVERITY     exit 1 on a finding of SEVERITY or worse (info low medium high critical)
  --list-rules           print every rule: ID, severity, weight, concern, title (--json: all fields)
  --policies DIR         where 'extends: NAME' is looked up (default: the shipped policies)
  -h, --help             show this help

exit status: 0 ok, 1 a gate failed or a policy is invalid, 2 usage error`;

const OPTIONS = {
  json: { type: 'boolean' },
  sarif: { type: 'boolean' },
  verbose: { type: 'boolean' },
  'fail-above': { type: 'string' },
  'fail-on': { type: 'string' },
  'list-rules': { type: 'boolean' },
  policies: { type: 'string' },
} as const;

function packageVersion(): string {
  return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
}

function colourWanted(): boolean {
  return process.stdout.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
}

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const args = parse(argv, OPTIONS, HELP);
    if (!args) return 0;
    const { SEVERITIES, severityRank } = await import('../audit/types.js');
    const v = args.values;
    if (v.json && v.sarif) throw new UsageError('give --json or --sarif, not both');
    if (v['list-rules']) {
      if (args.positionals.length) throw new UsageError('--list-rules takes no policy files');
      const { renderRulesJson, renderRulesText } = await import('../audit/format/rules.js');
      process.stdout.write(v.json ? renderRulesJson() : renderRulesText());
      return 0;
    }
    if (args.positionals.length === 0) throw new UsageError('audit needs at least one policy file');
    let failAbove: number | undefined;
    if (v['fail-above'] !== undefined) {
      failAbove = Number(v['fail-above']);
      if (v['fail-above'].trim() === '' || !Number.isFinite(failAbove) || failAbove < 0 || failAbove > 10) throw new UsageError(`--fail-above: expected a score from 0 to 10, got '${v['fail-above']}'`);
    }
    const failOn = v['fail-on'];
    if (failOn !== undefined && !(SEVERITIES as readonly string[]).includes(failOn)) {
      throw new UsageError(`--fail-on: expected one of ${SEVERITIES.join(', ')}, got '${failOn}'`);
    }

    const { auditFile } = await import('../audit/index.js');
    const { PolicyError, formatDiagnostic } = await import('../policy/errors.js');
    const reports = [];
    const invalid = [];
    for (const file of args.positionals) {
      try {
        reports.push(auditFile(file, { policiesDir: v.policies }));
      } catch (err) {
        if (err instanceof PolicyError) invalid.push({ file, diagnostics: err.diagnostics });
        else if (err instanceof Error) invalid.push({ file, diagnostics: [{ file, line: 1, col: 1, message: err.message }] });
        else throw err;
      }
    }

    if (v.sarif) {
      const { renderSarif } = await import('../audit/format/sarif.js');
      process.stdout.write(renderSarif(reports, invalid, packageVersion(), process.cwd()));
    } else if (v.json) {
      const { renderJson } = await import('../audit/format/json.js');
      process.stdout.write(renderJson(reports, invalid));
    } else {
      const { renderReport, renderSummary } = await import('../audit/format/text.js');
      const options = { verbose: v.verbose === true, colour: colourWanted() };
      process.stdout.write(reports.map((r) => renderReport(r, options)).join('\n'));
      if (reports.length > 1) process.stdout.write(renderSummary(reports, options));
    }
    // Load failures go to stderr in every format (JSON and SARIF carry them too).
    for (const d of invalid.flatMap((p) => p.diagnostics)) process.stderr.write(formatDiagnostic(d) + '\n');

    const aboveScore = failAbove !== undefined && reports.some((r) => r.score > failAbove!);
    const atSeverity = failOn !== undefined && reports.some((r) => r.findings.some((f) => severityRank(f.severity) >= severityRank(failOn as (typeof SEVERITIES)[number])));
    return invalid.length || aboveScore || atSeverity ? 1 : 0;
  });
}
