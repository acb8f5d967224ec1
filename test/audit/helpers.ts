// Shared by the audit tests: crafted policies in a temp dir, positions of text in them.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { auditFile } from '../../src/audit/index.js';
import { loadPolicy } from '../../src/policy/load.js';
import type { AuditReport } from '../../src/audit/types.js';
import type { Policy } from '../../src/policy/types.js';

export const POLICIES = resolve(import.meta.dirname, '../../policies');
export const STRICT = join(POLICIES, 'strict.yaml');
export const GUIX_DEFAULT = join(POLICIES, 'guix-default.yaml');
export const FIXED_OUTPUT = join(POLICIES, 'fixed-output.yaml');

/** 1-based line and column of `needle` in `text`, plus `offset` characters. */
export function positionOf(text: string, needle: string, offset = 0): { line: number; col: number } {
  const at = text.indexOf(needle);
  if (at < 0) throw new Error(`'${needle}' not in the text`);
  const before = text.slice(0, at + offset);
  const lines = before.split('\n');
  return { line: lines.length, col: lines[lines.length - 1].length + 1 };
}

/**
 * Writes base.yaml (extending `parent`, with `body` as its settings) and child.yaml that only
 * extends it, so that findings have to follow `extends` back to base.yaml.
 */
export function craft(dir: string, parent: string, body: string): { base: string; child: string; baseText: string } {
  const base = join(dir, 'base.yaml');
  const child = join(dir, 'child.yaml');
  const baseText = `stockade: 1\nname: base\nextends: ${parent}\n${body}`;
  writeFileSync(base, baseText);
  writeFileSync(child, 'stockade: 1\nname: child\nextends: ./base.yaml\n');
  return { base, child, baseText };
}

/** strict, merged into one standalone policy (no extends). */
export function strictStandalone(): Policy {
  const policy = structuredClone(loadPolicy(STRICT).policy);
  delete policy.extends;
  return policy;
}

/** Writes a policy object to FILE and audits it. */
export function auditObject(file: string, policy: unknown): AuditReport {
  writeFileSync(file, stringify(policy));
  return auditFile(file);
}

export function ruleIds(report: AuditReport): string[] {
  return [...new Set(report.findings.map((f) => f.ruleId))].sort();
}

/** Runs a command module's main in-process, capturing what it writes. */
export async function run(main: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    return { code: await main(argv), stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = write.stdout;
    process.stderr.write = write.stderr;
  }
}
