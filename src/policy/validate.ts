// Schema validation with the precompiled ajv validator, turned into positioned, readable messages.
import { fileURLToPath } from 'node:url';
import { loadCompiled } from './compiled.js';
import type { Diagnostic } from './errors.js';
import type { Json } from './source.js';
import { displayPath, pointerJoin } from './pointer.js';

export { displayPath };
import { POLICY_NAME_PATTERN, SPEC_NAME_PATTERN } from './lists.js';

/** Where a JSON pointer of the validated value came from. */
export type Locate = (pointer: string, atKey?: boolean) => { file: string; line: number; col: number };

interface AjvError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, any>;
  message?: string;
  propertyName?: string;
}

const PATTERN_MESSAGES: Record<string, string> = {
  absPath: "must be an absolute path without '..'",
  etcPath: "must be a path under /etc without '..'",
  landlockPath: 'must be an absolute path or one of {build_dir}, {inputs}, {outputs}',
  mode: 'must be an octal mode such as "0555"',
  size: 'must be a size such as 512M, 2G or 50%',
  bytes: 'must be a number of bytes such as 4G',
  name: "must be an account name (lower case letters, digits, '_' and '-')",
  hostname: 'must be a valid host name',
  envName: 'must be an environment variable name',
  capability: 'must be a capability name such as CAP_CHOWN',
  errnoName: 'must be an errno name such as EPERM',
  syscallName: 'must be a syscall name',
};

/** Patterns written inline in the schemas (not as a $def), by their source text. */
const INLINE_PATTERN_MESSAGES: Record<string, string> = {
  [POLICY_NAME_PATTERN]: "must be lower case letters, digits, '.', '_' and '-', starting with a letter or digit",
  '^[^:\\n]*$': "must not contain ':' or a line break",
  '^/[^\\n]*$': 'must be an absolute path',
  '^/': 'must be an absolute path',
  '^[^\\s/]+$': "must not contain spaces or '/'",
  '^(\\*|[A-Za-z_][A-Za-z0-9_]*\\*?)$': "must be a variable name, a prefix ending in '*', or '*'",
  '^[A-Za-z_][A-Za-z0-9_]*$': 'must be an environment variable name',
  [SPEC_NAME_PATTERN]: "must be letters, digits, '.', '_', '+' and '-', starting with a letter or digit",
};

function patternMessage(schemaPath: string, pattern: unknown): string | undefined {
  // A $def's pattern may sit in one of its oneOf branches (bytes: an integer or a string).
  const def = /#\/\$defs\/([A-Za-z]+)\/(?:oneOf\/\d+\/)?pattern$/.exec(schemaPath)?.[1];
  return (def ? PATTERN_MESSAGES[def] : undefined) ?? INLINE_PATTERN_MESSAGES[String(pattern)];
}

const VALUE_KEYWORDS = new Set([
  'enum', 'const', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'minLength', 'maxLength', 'multipleOf',
]);

function valueAt(root: Json, pointer: string): Json | undefined {
  let node: Json | undefined = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object') return undefined;
    node = Array.isArray(node) ? node[Number(key)] : node[key];
  }
  return node;
}

function jsonType(v: Json | undefined): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'map';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a map', array: 'a list', string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', null: 'null',
};

function show(v: Json | undefined): string {
  const text = JSON.stringify(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Keeps, for each failed oneOf, only the errors of the branch the value's shape was aiming at. */
function prune(errors: AjvError[], root: Json): AjvError[] {
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  let kept = errors.filter((e) => {
    // ajv follows each failing property name (reported with propertyName) by a vague summary.
    if (e.keyword === 'oneOf' || e.keyword === 'propertyNames') return false;
    if (!oneOfPaths.has(e.instancePath)) return true;
    const value = valueAt(root, e.instancePath);
    const scalar = value === null || typeof value !== 'object';
    if (e.keyword === 'type') return false;
    return scalar ? VALUE_KEYWORDS.has(e.keyword) : !VALUE_KEYWORDS.has(e.keyword);
  });
  for (const path of oneOfPaths) {
    const here = kept.filter((e) => e.instancePath === path);
    const isChoice = (e: AjvError) => e.keyword === 'const' || e.keyword === 'enum';
    if (here.some((e) => !isChoice(e))) {
      // The value has a branch's type but breaks its bounds (core: -1): only that branch's error
      // is useful, not also "must be 'unlimited'".
      kept = kept.filter((e) => e.instancePath !== path || !isChoice(e));
    } else if (here.length > 0 && here.every((e) => e.keyword === 'const')) {
      // Only a lone constant of one branch is left (nofile: lots): list every branch below instead.
      kept = kept.filter((e) => e.instancePath !== path);
    }
  }
  // A value whose type fits no branch: say which types would do. Deepest first, so that a
  // nested value's message counts as covering its parent ({soft: x} in an rlimit).
  for (const path of [...oneOfPaths].sort((a, b) => b.length - a.length)) {
    const covered = kept.some((e) => e.instancePath === path || e.instancePath.startsWith(path + '/'));
    if (covered) continue;
    const types = [...new Set(errors.filter((e) => e.instancePath === path && e.keyword === 'type').map((e) => String(e.params.type)))];
    const consts = errors.filter((e) => e.instancePath === path && (e.keyword === 'enum' || e.keyword === 'const'));
    const wanted = [...types.map((t) => TYPE_NAMES[t] ?? t), ...consts.flatMap((e) => (e.keyword === 'const' ? [show(e.params.allowedValue)] : (e.params.allowedValues as Json[]).map(show)))];
    kept.push({ instancePath: path, schemaPath: '', keyword: 'anyType', params: { wanted }, message: '' });
  }
  // Errors inside a oneOf branch can repeat; keep one per message and place.
  const seen = new Set<string>();
  kept = kept.filter((e) => {
    const id = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}|${e.propertyName ?? ''}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  return kept;
}

function describe(e: AjvError, root: Json): { pointer: string; atKey: boolean; message: string } {
  const value = valueAt(root, e.instancePath);
  // Messages start with the value's path, or with nothing for the document itself.
  const where = e.instancePath === '' ? '' : `${displayPath(e.instancePath)}: `;
  if (e.propertyName !== undefined) {
    const pointer = pointerJoin(e.instancePath, e.propertyName);
    const def = /#\/\$defs\/([A-Za-z]+)\//.exec(e.schemaPath)?.[1];
    let why = (def && PATTERN_MESSAGES[def]) || (e.keyword === 'pattern' ? patternMessage(e.schemaPath, e.params.pattern) : undefined) || e.message || 'is not allowed';
    if (e.keyword === 'enum') why = `must be one of: ${(e.params.allowedValues as string[]).join(', ')}`;
    return { pointer, atKey: true, message: `${where}invalid key '${e.propertyName}': ${why}` };
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      return { pointer: pointerJoin(e.instancePath, key), atKey: true, message: `${where}unknown key '${key}'` };
    }
    case 'required':
      return { pointer: e.instancePath, atKey: false, message: `${where}missing required key '${e.params.missingProperty}'` };
    case 'type':
      return { pointer: e.instancePath, atKey: false, message: `${where}expected ${TYPE_NAMES[e.params.type] ?? e.params.type}, got ${jsonType(value)}` };
    case 'anyType':
      return { pointer: e.instancePath, atKey: false, message: `${where}expected ${(e.params.wanted as string[]).join(' or ')}, got ${jsonType(value)} ${show(value)}` };
    case 'enum': {
      const allowed = e.params.allowedValues as Json[];
      // A bare `null` in YAML is the null value, not the string (devices: [null] is a classic).
      const hint = value === null && allowed.includes('null') ? ' (write "null" in quotes for the string)' : '';
      return { pointer: e.instancePath, atKey: false, message: `${where}${show(value)} is not one of: ${allowed.map((v) => String(v)).join(', ')}${hint}` };
    }
    case 'const':
      return { pointer: e.instancePath, atKey: false, message: `${where}must be ${show(e.params.allowedValue)}, got ${show(value)}` };
    case 'pattern': {
      const why = patternMessage(e.schemaPath, e.params.pattern) ?? `must match ${e.params.pattern}`;
      return { pointer: e.instancePath, atKey: false, message: `${where}${why}, got ${show(value)}` };
    }
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
    case 'minLength': case 'maxLength': case 'minItems': case 'maxItems':
      return { pointer: e.instancePath, atKey: false, message: `${where}${e.message}, got ${show(value)}` };
    default:
      return { pointer: e.instancePath, atKey: false, message: `${where}${e.message ?? e.keyword}` };
  }
}

/** Runs a precompiled validator and turns its errors into positioned diagnostics. */
export function validatorDiagnostics(validate: Validator, value: Json, locate: Locate): Diagnostic[] {
  if (validate(value)) return [];
  const errors = prune((validate.errors ?? []) as AjvError[], value);
  return errors.map((e) => {
    const { pointer, atKey, message } = describe(e, value);
    return { ...locate(pointer, atKey), message };
  });
}

type Validator = { (v: unknown): boolean; errors?: unknown };
let validators: { validatePolicy: Validator; validateSpec: Validator } | undefined;

/** The precompiled policy and spec validators (scripts/build-validator.mjs), loaded at first use. */
function policyValidators(): { validatePolicy: Validator; validateSpec: Validator } {
  validators ??= loadCompiled(fileURLToPath(new URL('./schema-validator.generated.cjs', import.meta.url))) as typeof validators;
  return validators!;
}

export function schemaDiagnostics(value: Json, locate: Locate): Diagnostic[] {
  return validatorDiagnostics(policyValidators().validatePolicy, value, locate);
}

/**
 * What the policy schema rejects in a value, as JSON pointers: `keys` it does not allow (the rest
 * means what it says without them) and `values` it rejects (a map missing a required key counts
 * as rejected; a list item rejects its whole list, so later items keep their indices). Null when
 * the value passes.
 */
export function schemaViolations(value: Json): { keys: string[]; values: string[] } | null {
  const validate = policyValidators().validatePolicy;
  if (validate(value)) return null;
  const keys: string[] = [];
  const values: string[] = [];
  for (const e of prune((validate.errors ?? []) as AjvError[], value)) {
    if (e.propertyName !== undefined) keys.push(pointerJoin(e.instancePath, e.propertyName));
    else if (e.keyword === 'additionalProperties') keys.push(pointerJoin(e.instancePath, String(e.params.additionalProperty)));
    else values.push(wholeList(value, e.instancePath));
  }
  return { keys, values };
}

/** The list a pointer names an item of, or the pointer itself. */
function wholeList(root: Json, pointer: string): string {
  const parent = pointer.slice(0, pointer.lastIndexOf('/'));
  return pointer !== '' && Array.isArray(valueAt(root, parent)) ? wholeList(root, parent) : pointer;
}

export function specSchemaDiagnostics(value: Json, locate: Locate): Diagnostic[] {
  return validatorDiagnostics(policyValidators().validateSpec, value, locate);
}
