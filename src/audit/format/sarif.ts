// SARIF 2.1.0, what code-scanning services show on pull requests: the rule catalogue as
// tool.driver.rules, one result per finding, load failures as tool execution notifications.
import { relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RULES } from '../registry.js';
import type { AuditReport, Severity } from '../types.js';
import type { InvalidPolicy } from './json.js';

const SARIF_LEVELS: Record<Severity, 'error' | 'warning' | 'note'> = { critical: 'error', high: 'error', medium: 'warning', low: 'note', info: 'note' };
/** GitHub maps these to its critical (≥9), high (≥7), medium (≥4) and low (>0) labels. */
const SECURITY_SEVERITY: Record<Severity, string> = { critical: '9.5', high: '8.0', medium: '5.5', low: '3.0', info: '0.0' };

/** A file as an artifact URI: relative to the working directory when below it, a file: URI otherwise. */
export function artifactUri(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  if (rel.startsWith('..') || rel === '' || /^[a-zA-Z]:/.test(rel) || rel.startsWith(sep)) return pathToFileURL(file).href;
  return rel.split(sep).map(encodeURIComponent).join('/');
}

function location(file: string, line: number, col: number, cwd: string) {
  return { physicalLocation: { artifactLocation: { uri: artifactUri(file, cwd) }, region: { startLine: line, startColumn: col } } };
}

export function renderSarif(reports: AuditReport[], invalid: InvalidPolicy[], version: string, cwd: string): string {
  const ruleIndex = new Map(RULES.map((r, i) => [r.id, i]));
  const rules = RULES.map((r) => ({
    id: r.id,
    name: r.id.replace(/-/g, ''),
    shortDescription: { text: r.title },
    fullDescription: { text: r.why },
    help: { text: `${r.why}\nFix: ${r.fix}`, markdown: `${r.why}\n\n**Fix:** ${r.fix}` },
    defaultConfiguration: { level: SARIF_LEVELS[r.severity] },
    properties: { 'security-severity': SECURITY_SEVERITY[r.severity], tags: ['security', r.concern], weight: r.weight },
  }));
  const results = reports.flatMap((report) =>
    report.findings.map((f) => ({
      ruleId: f.ruleId,
      ruleIndex: ruleIndex.get(f.ruleId)!,
      level: SARIF_LEVELS[f.severity],
      message: { text: `${f.message} (policy ${report.policyName}, exposure ${report.score.toFixed(1)} ${report.level})` },
      locations: [location(f.file, f.line, f.col, cwd)],
      properties: { policyFile: artifactUri(report.file, cwd), points: f.points },
    })),
  );
  const notifications = invalid.flatMap((p) =>
    p.diagnostics.map((d) => ({ level: 'error' as const, message: { text: d.message }, locations: [location(d.file, d.line, d.col, cwd)] })),
  );
  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'stockade', version, rules } },
        invocations: [{ executionSuccessful: invalid.length === 0, toolExecutionNotifications: notifications }],
        results,
        properties: { exposure: reports.map((r) => ({ policyFile: artifactUri(r.file, cwd), policy: r.policyName, score: r.score, level: r.level })) },
      },
    ],
  };
  return JSON.stringify(log, null, 2) + '\n';
}
