// Turns YAML text into plain data plus the source position of every node, so that later
// stages (schema validation, extends, planning, audit) can point at the offending node.
import { fileURLToPath } from 'node:url';
import type * as Yaml from 'yaml';
import type { Node } from 'yaml';
import { loadCompiled } from './compiled.js';
import { PolicyError, type Diagnostic } from './errors.js';
import { readBoundedText } from './read.js';
import { pointerJoin } from './pointer.js';

// yaml joined into one file at build time (scripts/bundle-yaml.mjs): loading its 70-odd files
// one by one was most of the start-up of `stockade validate`.
const { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } = loadCompiled(fileURLToPath(new URL('./yaml.generated.cjs', import.meta.url))) as typeof Yaml;

export interface NodePos {
  line: number;
  col: number;
  /** Position of the key naming this node, when it is a map value. */
  keyLine?: number;
  keyCol?: number;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface SourceDoc {
  file: string;
  value: Json;
  /** JSON pointer → position of the node (and its key). */
  positions: Map<string, NodePos>;
  /** Pointers of sequences tagged `!append` (extend the inherited list instead of replacing it). */
  appends: Set<string>;
}

export const APPEND_TAG = '!append';
const MAX_DEPTH = 64;

export { pointerJoin };

export function parseSource(file: string, text: string): { doc?: SourceDoc; diagnostics: Diagnostic[] } {
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const at = (offset: number, message: string): void => {
    const { line, col } = lineCounter.linePos(offset);
    diagnostics.push({ file, line, col, message });
  };
  // Duplicate keys are found in walk(), where the whole key is known: yaml's own error
  // spans only the key's first character.
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, merge: false });
  for (const error of document.errors) {
    // yaml's own text for this one names a JavaScript API, which means nothing to a policy's author.
    const message = error.code === 'MULTIPLE_DOCS' ? 'a policy file holds a single YAML document' : error.message.split('\n')[0];
    at(error.pos[0], `YAML syntax error: ${message}`);
  }
  if (diagnostics.length > 0) return { diagnostics };

  const positions = new Map<string, NodePos>();
  const appends = new Set<string>();

  const walk = (node: Node | null, pointer: string, depth: number): Json => {
    if (node === null) return null;
    const [start] = node.range ?? [0];
    const pos = lineCounter.linePos(start);
    const known = positions.get(pointer);
    positions.set(pointer, { ...known, line: pos.line, col: pos.col });
    if (depth > MAX_DEPTH) {
      at(start, `nesting deeper than ${MAX_DEPTH} levels`);
      return null;
    }
    if (isAlias(node)) {
      at(start, 'anchors and aliases are not allowed in policies (write the value out)');
      return null;
    }
    if (node.tag !== undefined && !(node.tag === APPEND_TAG && isSeq(node))) {
      // Shown as written: yaml expands !!binary to tag:yaml.org,2002:binary.
      const tag = node.tag.replace(/^tag:yaml\.org,2002:/, '!!');
      at(start, node.tag === APPEND_TAG ? `${APPEND_TAG} applies to lists only` : `unknown tag ${tag}`);
      // The tagged value (e.g. !!binary's bytes) would only add a second, vaguer error.
      return null;
    }
    if (isMap(node)) {
      const out: { [key: string]: Json } = {};
      const seen = new Set<string>();
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        if (!isScalar(keyNode) || (typeof keyNode.value !== 'string' && typeof keyNode.value !== 'number')) {
          at(keyNode?.range?.[0] ?? start, 'keys must be plain strings');
          continue;
        }
        const key = String(keyNode.value);
        if (seen.has(key)) {
          at(keyNode.range?.[0] ?? start, `duplicate key '${key}'`);
          continue;
        }
        seen.add(key);
        const child = pointerJoin(pointer, key);
        const keyPos = lineCounter.linePos(keyNode.range?.[0] ?? start);
        positions.set(child, { line: keyPos.line, col: keyPos.col, keyLine: keyPos.line, keyCol: keyPos.col });
        if (key === '__proto__') {
          at(keyNode.range?.[0] ?? start, "'__proto__' is not a valid key");
          continue;
        }
        const value = pair.value as Node | null;
        out[key] = value === null ? null : walk(value, child, depth + 1);
      }
      return out;
    }
    if (isSeq(node)) {
      if (node.tag === APPEND_TAG) appends.add(pointer);
      return node.items.map((item, index) => walk(item as Node | null, pointerJoin(pointer, index), depth + 1));
    }
    if (isScalar(node)) {
      const v = node.value;
      if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) at(start, 'numbers must be finite');
        return v;
      }
      at(start, `unsupported value of type ${typeof v}`);
      return null;
    }
    at(start, 'unsupported YAML node');
    return null;
  };

  const value = walk(document.contents as Node | null, '', 0);
  if (diagnostics.length > 0) return { diagnostics };
  return { doc: { file, value, positions, appends }, diagnostics };
}

/** A single-file YAML document (a build spec, the daemon's config) with a locator for its nodes. */
export interface SourceFile {
  doc: SourceDoc;
  /** The position of the node at `pointer` (or of its nearest ancestor), its key's with `atKey`. */
  locate(pointer: string, atKey?: boolean): { file: string; line: number; col: number };
}

/** Reads and parses `file` (`what` names it in the error); unreadable or malformed files throw a PolicyError. */
export function readSourceFile(file: string, what: string): SourceFile {
  let text: string;
  try {
    text = readBoundedText(file);
  } catch (err) {
    throw new PolicyError([{ file, line: 1, col: 1, message: `cannot read ${what}: ${(err as Error).message}` }]);
  }
  const { doc, diagnostics } = parseSource(file, text);
  if (!doc) throw new PolicyError(diagnostics);
  const locate = (pointer: string, atKey?: boolean) => {
    let p = pointer;
    while (!doc.positions.has(p) && p !== '') p = p.slice(0, p.lastIndexOf('/'));
    const pos = doc.positions.get(p);
    const useKey = atKey && pos?.keyLine !== undefined;
    return { file, line: (useKey ? pos?.keyLine : pos?.line) ?? 1, col: (useKey ? pos?.keyCol : pos?.col) ?? 1 };
  };
  return { doc, locate };
}
