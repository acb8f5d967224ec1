// Text for people: per policy the score and level, then findings grouped by concern as
// FILE:LINE:COL: SEVERITY ID message, with why/fix when verbose. Coloured on a terminal.
import { ruleById } from '../registry.js';
import { CONCERNS, type AuditReport, type Severity } from '../types.js';

export interface TextOptions {
  verbose: boolean;
  colour: boolean;
}

const SEVERITY_COLOURS: Record<Severity, string> = { critical: '1;31', high: '31', medium: '33', low: '36', info: '2' };
const LEVEL_COLOURS: Record<string, string> = { PERFECT: '1;32', SAFE: '32', OK: '32', MEDIUM: '33', EXPOSED: '31', UNSAFE: '1;31', DANGEROUS: '1;31' };

export function paint(text: string, code: string | undefined, colour: boolean): string {
  return colour && code ? `\x1b[${code}m${text}\x1b[0m` : text;
}

export function renderReport(report: AuditReport, options: TextOptions): string {
  const out: string[] = [];
  const level = paint(`${report.score.toFixed(1)} ${report.level}`, LEVEL_COLOURS[report.level], options.colour);
  out.push(`${report.file}: policy ${report.policyName} (${report.chain.join(' → ')}): exposure ${level}`);
  if (report.findings.length === 0) out.push('  no findings');
  for (const concern of CONCERNS) {
    const findings = report.findings.filter((f) => f.concern === concern);
    if (findings.length === 0) continue;
    out.push('', `  ${concern}`);
    for (const f of findings) {
      const severity = paint(f.severity.toUpperCase(), SEVERITY_COLOURS[f.severity], options.colour);
      const points = f.points > 0 ? ` [+${f.points.toFixed(2).replace(/0$/, '')}]` : '';
      out.push(`    ${f.file}:${f.line}:${f.col}: ${severity} ${f.ruleId} ${f.message}${points}`);
      if (options.verbose) {
        const rule = ruleById(f.ruleId)!;
        out.push(`      why: ${rule.why}`, `      fix: ${rule.fix}`);
      }
    }
  }
  return out.join('\n') + '\n';
}

/** The closing table when several policies are audited at once. */
export function renderSummary(reports: AuditReport[], options: TextOptions): string {
  const width = Math.max(6, ...reports.map((r) => r.file.length));
  const rows = reports.map((r) => `  ${r.file.padEnd(width)}  ${r.score.toFixed(1).padStart(4)}  ${paint(r.level, LEVEL_COLOURS[r.level], options.colour)}`);
  return ['', `  ${'POLICY'.padEnd(width)}  SCORE  LEVEL`, ...rows].join('\n') + '\n';
}
