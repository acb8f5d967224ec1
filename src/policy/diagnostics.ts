// A policy's diagnostics, schema and semantic together. Kept apart from semantics.ts, which the
// planner and runtime import: a cached plan must not load the schema validator.
import type { Diagnostic } from './errors.js';
import { pointerJoin } from './pointer.js';
import { CHECKS, reporter, semanticDiagnostics } from './semantics.js';
import type { Json } from './source.js';
import type { Policy } from './types.js';
import { schemaDiagnostics, schemaViolations, type Locate } from './validate.js';

/** Rounds of taking rejected values out; each round follows from the last (a map left without a required key). */
const MAX_PRUNE_ROUNDS = 8;

/**
 * Every schema error of a merged policy and, alongside them, the semantic errors the schema
 * errors do not hide: the checks run on the policy without what the schema rejected, and a check
 * that read a rejected value (now missing, so it would judge a default the author did not write)
 * reports nothing. Keys the schema does not allow hide nothing.
 */
export function policyDiagnostics(value: Json, locate: Locate): Diagnostic[] {
  const schemaErrors = schemaDiagnostics(value, locate);
  if (schemaErrors.length === 0) return semanticDiagnostics(value as unknown as Policy, locate);
  const rest = structuredClone(value);
  const rejected = new Set<string>();
  for (let round = 0; ; round++) {
    const violations = schemaViolations(rest);
    if (!violations) break;
    if (round === MAX_PRUNE_ROUNDS || violations.values.includes('')) return schemaErrors;
    for (const pointer of violations.keys) remove(rest, pointer);
    for (const pointer of violations.values) {
      rejected.add(pointer);
      remove(rest, pointer);
    }
  }
  const out = [...schemaErrors];
  for (const check of CHECKS) {
    const found: Diagnostic[] = [];
    const reads = new Set<string>();
    check(readTracked(rest, '', reads) as unknown as Policy, reporter(found, locate), locate);
    if (![...reads].some((pointer) => rejected.has(pointer))) out.push(...found);
  }
  return out;
}

function remove(root: Json, pointer: string): void {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = parts.pop()!;
  let node: Json | undefined = root;
  for (const part of parts) node = node === null || typeof node !== 'object' ? undefined : Array.isArray(node) ? node[Number(part)] : node[part];
  if (node !== null && typeof node === 'object' && !Array.isArray(node)) delete node[last];
}

/** A view of `value` that adds the pointer of every key read through it to `reads`. */
function readTracked(value: Json, pointer: string, reads: Set<string>): Json {
  if (value === null || typeof value !== 'object') return value;
  return new Proxy(value, {
    get(target, key, receiver) {
      const child = Reflect.get(target, key, receiver) as Json;
      if (typeof key !== 'string') return child;
      const at = pointerJoin(pointer, key);
      reads.add(at);
      return readTracked(child, at, reads);
    },
    has(target, key) {
      if (typeof key === 'string') reads.add(pointerJoin(pointer, key));
      return Reflect.has(target, key);
    },
  });
}
