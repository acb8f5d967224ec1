// JSON for machines: every report, and the diagnostics of policies that did not load.
import type { Diagnostic } from '../../policy/errors.js';
import type { AuditReport } from '../types.js';

export interface InvalidPolicy {
  file: string;
  diagnostics: Diagnostic[];
}

export function renderJson(reports: AuditReport[], invalid: InvalidPolicy[]): string {
  const policies = reports.map((r) => ({
    file: r.file,
    policy: r.policyName,
    chain: r.chain,
    score: r.score,
    level: r.level,
    findings: r.findings.map((f) => ({
      ruleId: f.ruleId,
      severity: f.severity,
      concern: f.concern,
      message: f.message,
      file: f.file,
      line: f.line,
      col: f.col,
      pointer: f.pointer,
      default: f.isDefault,
      points: f.points,
    })),
  }));
  return JSON.stringify({ policies, invalid }, null, 2) + '\n';
}
