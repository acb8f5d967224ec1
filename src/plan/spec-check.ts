// Build specs checked against what their policy allows. Imports no YAML parser or validator:
// a cached policy is planned without them (cache.ts).
import { pointerJoin } from '../policy/pointer.js';
import type { BuildSpec, Policy } from '../policy/types.js';
import { isUnder, normalise } from '../policy/semantics.js';
import { SPEC_NAME_MAX_LENGTH, SPEC_NAME_PATTERN } from '../policy/lists.js';
import { DEFAULTS } from './defaults.js';

/** Where a field of a spec was written (FILE:LINE:COL), or undefined for one given elsewhere (the command line). */
export type SpecLocate = (pointer: string) => { file: string; line: number; col: number } | undefined;

// Kept beside the spec rather than in it: a spec is plain data the daemon also receives as JSON.
const SPEC_POSITIONS = new WeakMap<BuildSpec, SpecLocate>();

/** Notes where `spec`'s fields were written, so that its refusals carry FILE:LINE:COL. */
export function withPositions(spec: BuildSpec, locate: SpecLocate): BuildSpec {
  SPEC_POSITIONS.set(spec, locate);
  return spec;
}

export function positionsOf(spec: BuildSpec): SpecLocate | undefined {
  return SPEC_POSITIONS.get(spec);
}

export function envAllowed(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => p === '*' || p === name || (p.endsWith('*') && name.startsWith(p.slice(0, -1))));
}

/** Refuses a spec that asks for more than its policy allows; every problem at once. */
export function checkSpec(spec: BuildSpec, policy: Policy, where = 'build spec'): void {
  const problems: Problem[] = [];
  const at = (pointer: string) => (text: string | undefined) => text !== undefined && problems.push({ pointer, text });
  const pathProblem = (kind: string, path: string): string | undefined => {
    if (!path.startsWith('/')) return `${kind} ${JSON.stringify(path)} is not an absolute path`;
    if (/(^|\/)\.\.(\/|$)/.test(path)) return `${kind} ${JSON.stringify(path)} contains '..'`;
    return undefined;
  };
  const inputsUnder = policy.filesystem?.inputs?.under ?? [];
  const inputs = spec.inputs ?? [];
  const maxInputs = policy.limits?.inputs ?? DEFAULTS.maxInputs;
  // Over the cap, the inputs are not looked at one by one: the refusal's work and text stay bounded.
  if (inputs.length > maxInputs) at('/inputs')(`${inputs.length} inputs, more than limits.inputs allows (${maxInputs})`);
  for (const [i, input] of (inputs.length > maxInputs ? [] : inputs).entries()) {
    const bad = pathProblem('input', input);
    if (bad) at(`/inputs/${i}`)(bad);
    else if (!inputsUnder.some((prefix) => isUnder(normalise(input), prefix))) {
      at(`/inputs/${i}`)(`input ${input} is not under filesystem.inputs.under (${inputsUnder.join(', ') || 'nothing allowed'})`);
    }
  }
  const outputsUnder = policy.filesystem?.outputs?.under ?? [];
  for (const [i, output] of (spec.outputs ?? []).entries()) {
    const bad = pathProblem('output', output);
    if (bad) at(`/outputs/${i}`)(bad);
    else if (!outputsUnder.some((prefix) => isUnder(normalise(output), prefix))) {
      at(`/outputs/${i}`)(`output ${output} is not under filesystem.outputs.under (${outputsUnder.join(', ') || 'nothing allowed'})`);
    }
  }
  // Outputs are siblings, as in a store: one inside another would be made inside the other's tree.
  const outputs = new Set((spec.outputs ?? []).filter((o) => !pathProblem('output', o)).map(normalise));
  for (const output of outputs) {
    for (let up = output.slice(0, output.lastIndexOf('/')); up.length > 0; up = up.slice(0, up.lastIndexOf('/'))) {
      if (outputs.has(up)) at('/outputs')(`output ${output} lies inside output ${up}`);
    }
  }
  if (new Set((spec.outputs ?? []).map(normalise)).size < (spec.outputs ?? []).length) at('/outputs')('an output is listed more than once');
  at('/builder')(pathProblem('builder', spec.builder));
  const allow = policy.environment?.spec_allow ?? [];
  for (const name of Object.keys(spec.env ?? {})) {
    if (!envAllowed(name, allow)) at(pointerJoin('/env', name))(`environment variable ${name} is not allowed by environment.spec_allow (${allow.join(', ') || 'none'})`);
  }
  if (!new RegExp(SPEC_NAME_PATTERN).test(spec.name) || spec.name.length > SPEC_NAME_MAX_LENGTH) {
    at('/name')(`name ${JSON.stringify(spec.name)} must be letters, digits, '.', '_', '+', '-' (at most ${SPEC_NAME_MAX_LENGTH})`);
  }
  if (spec.cores !== undefined && (!Number.isInteger(spec.cores) || spec.cores < 0)) {
    at('/cores')(`cores must be a whole number ≥ 0, got ${spec.cores}`);
  }
  if (problems.length) throw new SpecRefused(where, problems, SPEC_POSITIONS.get(spec));
}

interface Problem {
  /** JSON pointer of the spec field at fault. */
  pointer: string;
  text: string;
}

/** A build spec asking for more than its policy allows; a field written in a spec file is named by FILE:LINE:COL. */
export class SpecRefused extends Error {
  readonly problems: string[];

  constructor(where: string, problems: Problem[], locate?: SpecLocate) {
    super(problems.map((p) => {
      const pos = locate?.(p.pointer);
      return `${pos ? `${pos.file}:${pos.line}:${pos.col}` : where}: refused: ${p.text}`;
    }).join('\n'));
    this.name = 'SpecRefused';
    this.problems = problems.map((p) => p.text);
  }
}
