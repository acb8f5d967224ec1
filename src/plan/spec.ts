// Build specs: loaded from YAML/JSON with positions, then checked against what the policy allows.
import { PolicyError } from '../policy/errors.js';
import { readSourceFile } from '../policy/source.js';
import { specSchemaDiagnostics } from '../policy/validate.js';
import { sortDiagnostics } from '../policy/load.js';
import type { BuildSpec, Policy } from '../policy/types.js';
import { isUnder, normalise } from '../policy/semantics.js';
import { SPEC_NAME_MAX_LENGTH, SPEC_NAME_PATTERN } from '../policy/lists.js';
import { DEFAULTS } from './defaults.js';

export function loadSpecFile(file: string): BuildSpec {
  const { doc, locate } = readSourceFile(file, 'build spec');
  const errors = specSchemaDiagnostics(doc.value, locate);
  if (errors.length) throw new PolicyError(sortDiagnostics(errors));
  return doc.value as unknown as BuildSpec;
}

export function envAllowed(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => p === '*' || p === name || (p.endsWith('*') && name.startsWith(p.slice(0, -1))));
}

/** Refuses a spec that asks for more than its policy allows; every problem at once. */
export function checkSpec(spec: BuildSpec, policy: Policy, where = 'build spec'): void {
  const problems: string[] = [];
  const pathProblem = (kind: string, path: string): string | undefined => {
    if (!path.startsWith('/')) return `${kind} ${JSON.stringify(path)} is not an absolute path`;
    if (/(^|\/)\.\.(\/|$)/.test(path)) return `${kind} ${JSON.stringify(path)} contains '..'`;
    return undefined;
  };
  const inputsUnder = policy.filesystem?.inputs?.under ?? [];
  const inputs = spec.inputs ?? [];
  const maxInputs = policy.limits?.inputs ?? DEFAULTS.maxInputs;
  // Over the cap, the inputs are not looked at one by one: the refusal's work and text stay bounded.
  if (inputs.length > maxInputs) problems.push(`${inputs.length} inputs, more than limits.inputs allows (${maxInputs})`);
  for (const input of inputs.length > maxInputs ? [] : inputs) {
    const bad = pathProblem('input', input);
    if (bad) problems.push(bad);
    else if (!inputsUnder.some((prefix) => isUnder(normalise(input), prefix))) {
      problems.push(`input ${input} is not under filesystem.inputs.under (${inputsUnder.join(', ') || 'nothing allowed'})`);
    }
  }
  const outputsUnder = policy.filesystem?.outputs?.under ?? [];
  for (const output of spec.outputs ?? []) {
    const bad = pathProblem('output', output);
    if (bad) problems.push(bad);
    else if (!outputsUnder.some((prefix) => isUnder(normalise(output), prefix))) {
      problems.push(`output ${output} is not under filesystem.outputs.under (${outputsUnder.join(', ') || 'nothing allowed'})`);
    }
  }
  const badBuilder = pathProblem('builder', spec.builder);
  if (badBuilder) problems.push(badBuilder);
  const allow = policy.environment?.spec_allow ?? [];
  for (const name of Object.keys(spec.env ?? {})) {
    if (!envAllowed(name, allow)) problems.push(`environment variable ${name} is not allowed by environment.spec_allow (${allow.join(', ') || 'none'})`);
  }
  if (!new RegExp(SPEC_NAME_PATTERN).test(spec.name) || spec.name.length > SPEC_NAME_MAX_LENGTH) {
    problems.push(`name ${JSON.stringify(spec.name)} must be letters, digits, '.', '_', '+', '-' (at most ${SPEC_NAME_MAX_LENGTH})`);
  }
  if (spec.cores !== undefined && (!Number.isInteger(spec.cores) || spec.cores < 0)) {
    problems.push(`cores must be a whole number ≥ 0, got ${spec.cores}`);
  }
  if (problems.length) throw new SpecRefused(where, problems);
}

/** A build spec asking for more than its policy allows. */
export class SpecRefused extends Error {
  readonly problems: string[];

  constructor(where: string, problems: string[]) {
    super(problems.map((p) => `${where}: refused: ${p}`).join('\n'));
    this.name = 'SpecRefused';
    this.problems = problems;
  }
}
