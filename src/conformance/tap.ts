// TAP 13 with YAML diagnostics: one test point per check and policy.
import { stringify } from 'yaml';
import type { CheckResult, PolicyReport } from './suite.js';

export function tapHeader(count: number): string {
  return `TAP version 13\n1..${count}\n`;
}

export function tapPolicy(report: PolicyReport): string {
  return [`# ${report.policy} (${report.file})`, ...report.notes.map((n) => `#   ${n}`)].join('\n') + '\n';
}

function diagnostics(data: Record<string, unknown>): string {
  const body = stringify(data, { lineWidth: 0 }).trimEnd().split('\n').map((l) => `  ${l}`).join('\n');
  return `  ---\n${body}\n  ...\n`;
}

export function tapResult(n: number, r: CheckResult): string {
  const title = `${r.policy} ${r.id} ${r.property}`;
  switch (r.status) {
    case 'pass':
      return `ok ${n} - ${title}\n`;
    case 'skip':
      return `ok ${n} - ${title} # SKIP ${r.reason}\n`;
    case 'cannot-run':
      // A skip, never a pass: the run's exit status is 77.
      return `ok ${n} - ${title} # SKIP cannot run on this machine: ${r.reason}\n`;
    case 'fail':
      return `not ok ${n} - ${title}\n` + diagnostics(r.reason !== undefined && r.expected === undefined ? { error: r.reason } : { expected: r.expected, observed: r.observed });
  }
}
