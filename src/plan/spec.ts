// Build specs: loaded from YAML/JSON with positions, then checked against what the policy allows (spec-check.ts).
import { PolicyError } from '../policy/errors.js';
import { readSourceFile } from '../policy/source.js';
import { specSchemaDiagnostics } from '../policy/validate.js';
import { sortDiagnostics } from '../policy/load.js';
import type { BuildSpec } from '../policy/types.js';
import { withPositions } from './spec-check.js';

export { checkSpec, envAllowed, positionsOf, SpecRefused, withPositions, type SpecLocate } from './spec-check.js';

export function loadSpecFile(file: string): BuildSpec {
  const { doc, locate } = readSourceFile(file, 'build spec');
  const errors = specSchemaDiagnostics(doc.value, locate);
  if (errors.length) throw new PolicyError(sortDiagnostics(errors));
  return withPositions(doc.value as unknown as BuildSpec, (pointer) => locate(pointer));
}

