// The rule catalogue: `stockade audit --list-rules` and the table of docs/audit.md, both
// from the registry, so weights and texts are written once.
import { RULES } from '../registry.js';
import type { RegisteredRule } from '../types.js';

function weight(rule: RegisteredRule): string {
  return rule.weight.toFixed(2).replace(/0$/, '');
}

export function renderRulesText(): string {
  const rows = RULES.map((r) => [r.id, r.severity, weight(r), r.concern, r.title]);
  const header = ['ID', 'SEVERITY', 'WEIGHT', 'CONCERN', 'TITLE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function renderRulesJson(): string {
  return JSON.stringify(RULES.map(({ id, concern, severity, weight: w, title, why, fix }) => ({ id, concern, severity, weight: w, title, why, fix })), null, 2) + '\n';
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function renderRulesMarkdown(): string {
  const out = ['| ID | severity | weight | title | why | fix |', '|---|---|---|---|---|---|'];
  for (const r of RULES) out.push(`| ${r.id} | ${r.severity} | ${weight(r)} | ${cell(r.title)} | ${cell(r.why)} | ${cell(r.fix)} |`);
  return out.join('\n') + '\n';
}
