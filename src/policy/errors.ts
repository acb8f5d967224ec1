// Positioned diagnostics: every problem in a policy is reported as FILE:LINE:COL: message.

export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.message}`;
}

/** Thrown when a policy or build spec is invalid; carries every problem found, not just the first. */
export class PolicyError extends Error {
  readonly diagnostics: Diagnostic[];

  constructor(diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'PolicyError';
    this.diagnostics = diagnostics;
  }
}
