// Loads a policy: YAML with positions, `extends` resolved and merged, schema and semantic
// checks. Every problem is collected and thrown at once as a PolicyError.
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PolicyError, type Diagnostic } from './errors.js';
import { parseSource, pointerJoin, type Json, type NodePos, type SourceDoc } from './source.js';
import { FileRefused, readBoundedText } from './read.js';
import type { Locate } from './validate.js';
import { policyDiagnostics } from './semantics.js';
import type { Policy } from './types.js';
import { loadOciProfile } from '../seccomp/profile-file.js';
import { planSeccompSection, type ImportedProfile } from '../seccomp/policy-filter.js';
import type { SeccompPlan } from '../plan/types.js';

export const SHIPPED_POLICIES_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));

export interface Origin extends NodePos {
  file: string;
}

export interface LoadedPolicy {
  policy: Policy;
  /** The file asked for, then each file it extends, in order. */
  chain: string[];
  /** Where each value of the merged policy was set (JSON pointer → file and position). */
  origins: Map<string, Origin>;
  locate: Locate;
  /** seccomp.profile read and imported for the policy's capabilities (the planner reads no files). */
  seccompProfile?: ImportedProfile;
  /** The filter the seccomp section plans (with the profile), planned once here; null without a seccomp section. */
  seccomp: SeccompPlan | null;
  /** Where an `extends` by name looked before finding its base: a file appearing there would change the chain. */
  basesNotFound: string[];
  /** The SHA-256 of each file of the chain as it was read (for the plan cache's key). */
  chainHashes: string[];
}

export interface LoadOptions {
  /** Where `extends: NAME` is looked up after the extending file's own directory. */
  policiesDir?: string;
}

/** Keys of which a policy may set only one; setting one drops the other inherited from a base. */
const EXCLUSIVE_KEYS: Record<string, string[]> = { '/users': ['group', 'range'] };
const MAX_CHAIN = 16;

interface Layer {
  value: Json;
  origins: Map<string, Origin>;
}

function isMap(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Both walk the value rather than scan every position: origins hold exactly one entry per node
// of the value, so a walk visits only the subtree (a scan per node made a merge quadratic).
function copyOrigins(doc: ParsedDoc, value: Json, from: string, to: string, into: Map<string, Origin>): void {
  if (from === to) {
    const { index, ends, pointers, origins } = doc.table;
    const start = index.get(from);
    if (start !== undefined) {
      // In place (all but appended items): the subtree's origins, made once per parse.
      for (let i = start; i < ends[start]; i++) into.set(pointers[i], origins[i]);
      return;
    }
  }
  const pos = doc.positions.get(from);
  if (pos) into.set(to, { ...pos, file: doc.file });
  if (Array.isArray(value)) {
    value.forEach((item, index) => copyOrigins(doc, item, pointerJoin(from, index), pointerJoin(to, index), into));
  } else if (isMap(value)) {
    for (const key of Object.keys(value)) copyOrigins(doc, value[key], pointerJoin(from, key), pointerJoin(to, key), into);
  }
}

/** A parsed file's origins in document order, where every subtree is one run of entries. */
interface OriginTable {
  pointers: string[];
  /** Frozen: shared by every load of the file. */
  origins: Origin[];
  /** Pointer → its entry; the subtree is the entries from there up to ends[entry]. */
  index: Map<string, number>;
  ends: number[];
}

interface ParsedDoc extends SourceDoc {
  table: OriginTable;
  /** Of the text parsed. */
  sha256: string;
}

function originTable(doc: SourceDoc): OriginTable {
  // parseSource records positions depth first (a node before its children), so each subtree
  // is contiguous and ends at the first entry outside it.
  const pointers = [...doc.positions.keys()];
  const origins = [...doc.positions.values()].map((pos) => Object.freeze({ ...pos, file: doc.file }));
  const index = new Map<string, number>();
  const ends = new Array<number>(pointers.length).fill(pointers.length);
  const open: number[] = [];
  pointers.forEach((pointer, i) => {
    while (open.length > 0 && !pointer.startsWith(pointers[open[open.length - 1]] + '/')) ends[open.pop()!] = i;
    open.push(i);
    index.set(pointer, i);
  });
  return { pointers, origins, index, ends };
}

function dropOrigins(origins: Map<string, Origin>, value: Json | undefined, pointer: string): void {
  origins.delete(pointer);
  if (Array.isArray(value)) value.forEach((item, index) => dropOrigins(origins, item, pointerJoin(pointer, index)));
  else if (isMap(value)) for (const key of Object.keys(value)) dropOrigins(origins, value[key], pointerJoin(pointer, key));
}

/** Overlays a policy on the layer it extends: maps merge, lists replace unless tagged !append. */
function overlay(base: Layer, top: ParsedDoc): Layer {
  const origins = new Map(base.origins);
  const merge = (under: Json | undefined, over: Json, pointer: string): Json => {
    if (isMap(under) && isMap(over)) {
      const out: { [key: string]: Json } = { ...under };
      const exclusive = EXCLUSIVE_KEYS[pointer];
      for (const key of Object.keys(over)) {
        const child = pointerJoin(pointer, key);
        if (exclusive?.includes(key)) {
          // Only an inherited sibling gives way; both set in one file is an error semantics reports.
          for (const other of exclusive.filter((k) => k !== key && k in out && !(k in over))) {
            dropOrigins(origins, out[other], pointerJoin(pointer, other));
            delete out[other];
          }
        }
        out[key] = merge(out[key], over[key], child);
      }
      const pos = top.positions.get(pointer);
      if (pos) origins.set(pointer, { ...origins.get(pointer), ...pos, file: top.file });
      return out;
    }
    if (Array.isArray(under) && Array.isArray(over) && top.appends.has(pointer)) {
      over.forEach((item, index) => copyOrigins(top, item, pointerJoin(pointer, index), pointerJoin(pointer, under.length + index), origins));
      return [...under, ...over];
    }
    dropOrigins(origins, under, pointer);
    copyOrigins(top, over, pointer, pointer, origins);
    return over;
  };
  return { value: merge(base.value, top.value, ''), origins };
}

function locator(origins: Map<string, Origin>, fallbackFile: string): Locate {
  return (pointer, atKey = false) => {
    let p = pointer;
    for (;;) {
      const origin = origins.get(p);
      if (origin) {
        const useKey = atKey && p === pointer && origin.keyLine !== undefined;
        return { file: origin.file, line: useKey ? origin.keyLine! : origin.line, col: useKey ? origin.keyCol! : origin.col };
      }
      if (p === '') return { file: fallbackFile, line: 1, col: 1 };
      p = p.slice(0, p.lastIndexOf('/'));
    }
  };
}

// Parsed files by name, reused while their text is unchanged: YAML parsing is most of a load,
// and a base such as guix-default is read once per policy extending it.
const parsed = new Map<string, { text: string; doc: ParsedDoc }>();
const PARSED_MAX = 64;

/** `refused`: why the file could not be read at all (an `extends` names it at its own position). */
function readSource(file: string): { doc?: ParsedDoc; diagnostics: Diagnostic[]; refused?: string } {
  let text: string;
  try {
    text = readBoundedText(file);
  } catch (err) {
    const reason = err instanceof FileRefused ? err.message : String(err);
    return { diagnostics: [{ file, line: 1, col: 1, message: `cannot read policy: ${reason}` }], refused: reason };
  }
  const hit = parsed.get(file);
  // A copy of the value: the merged policy shares its lists, and callers own what they get.
  if (hit?.text === text) return { doc: { ...hit.doc, value: cloneJson(hit.doc.value) }, diagnostics: [] };
  const result = parseSource(file, text);
  if (!result.doc) return { diagnostics: result.diagnostics };
  const doc = { ...result.doc, table: originTable(result.doc), sha256: createHash('sha256').update(text).digest('hex') };
  if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value!);
  parsed.set(file, { text, doc: { ...doc, value: cloneJson(doc.value) } });
  return { doc, diagnostics: [] };
}

/** Deep copy of parsed YAML data (plain maps, lists and scalars), quicker than structuredClone. */
function cloneJson(value: Json): Json {
  if (Array.isArray(value)) return value.map(cloneJson);
  if (!isMap(value)) return value;
  const out: { [key: string]: Json } = {};
  for (const key of Object.keys(value)) out[key] = cloneJson(value[key]);
  return out;
}

function findBase(name: string, from: string, options: LoadOptions): { path?: string; tried: string[] } {
  if (name.includes('/') || /\.ya?ml$/.test(name)) {
    // join, not resolve: a relative chain stays relative, as with names (messages, Plan.policy.chain).
    const path = isAbsolute(name) ? name : join(dirname(from), name);
    return existsSync(path) ? { path, tried: [path] } : { tried: [path] };
  }
  const dirs = [dirname(from), options.policiesDir ?? SHIPPED_POLICIES_DIR];
  const tried = [...new Set(dirs.map((dir) => join(dir, `${name}.yaml`)))];
  return { path: tried.find((p) => existsSync(p)), tried };
}

/** Reads a policy file and everything it extends, validates it, and returns the merged policy. */
export function loadPolicy(file: string, options: LoadOptions = {}): LoadedPolicy {
  const docs: ParsedDoc[] = [];
  const seen: string[] = [];
  const basesNotFound: string[] = [];
  let current = file;
  let read = readSource(current);
  for (;;) {
    const doc = read.doc;
    if (!doc) throw new PolicyError(read.diagnostics);
    docs.push(doc);
    seen.push(safeRealpath(current));
    const value = doc.value;
    const fileErrors: Diagnostic[] = [];
    const here = (pointer: string, message: string, atKey = false) => {
      const pos = doc.positions.get(pointer);
      const line = atKey ? pos?.keyLine ?? pos?.line : pos?.line;
      const col = atKey ? pos?.keyCol ?? pos?.col : pos?.col;
      fileErrors.push({ file: doc.file, line: line ?? 1, col: col ?? 1, message });
    };
    if (!isMap(value)) {
      here('', `a policy must be a map of settings, got ${value === null ? 'an empty document' : Array.isArray(value) ? 'a list' : typeof value}`);
      throw new PolicyError(fileErrors);
    }
    for (const key of ['stockade', 'name']) {
      if (!(key in value)) here('', `missing required key '${key}'`);
    }
    if (fileErrors.length) throw new PolicyError(fileErrors);
    const parent = value.extends;
    if (parent === undefined) break;
    if (typeof parent !== 'string' || parent === '') {
      here('/extends', 'extends: expected a policy name or path');
      throw new PolicyError(fileErrors);
    }
    const { path, tried } = findBase(parent, current, options);
    if (!path) {
      here('/extends', `extends: cannot find policy '${parent}' (looked for ${tried.join(', ')})`);
      throw new PolicyError(fileErrors);
    }
    basesNotFound.push(...tried.slice(0, tried.indexOf(path)));
    const real = safeRealpath(path);
    if (seen.includes(real)) {
      const chain = [...docs.map((d) => d.file), path].join(' → ');
      here('/extends', `extends cycle: ${chain}`);
      throw new PolicyError(fileErrors);
    }
    if (docs.length >= MAX_CHAIN) {
      here('/extends', `extends chain longer than ${MAX_CHAIN} policies`);
      throw new PolicyError(fileErrors);
    }
    read = readSource(path);
    if (read.refused !== undefined) {
      here('/extends', `extends: cannot read policy ${path}: ${read.refused}`);
      throw new PolicyError(fileErrors);
    }
    current = path;
  }

  // Merge from the root base up to the file asked for.
  let layer: Layer = { value: {}, origins: new Map() };
  for (const doc of [...docs].reverse()) layer = overlay(layer, doc);
  const merged = layer.value as { [key: string]: Json };
  delete merged.extends;
  if (docs.length > 1) merged.extends = (docs[0].value as { [key: string]: Json }).extends;

  const locate = locator(layer.origins, file);
  const problems = policyDiagnostics(merged, locate);
  if (problems.length) throw new PolicyError(sortDiagnostics(problems));
  const policy = merged as unknown as Policy;
  const seccompProfile = importSeccompProfile(policy, layer.origins, locate);
  const seccomp = planSeccomp(policy, seccompProfile, locate);
  return { policy, chain: docs.map((d) => d.file), origins: layer.origins, locate, seccomp, basesNotFound, chainHashes: docs.map((d) => d.sha256), ...(seccompProfile ? { seccompProfile } : {}) };
}

/**
 * Reads seccomp.profile, relative to the file that set it, and imports it for the capabilities
 * the build keeps.
 */
function importSeccompProfile(policy: Policy, origins: Map<string, Origin>, locate: Locate): ImportedProfile | undefined {
  const name = policy.seccomp?.profile;
  if (name === undefined) return undefined;
  const setBy = origins.get('/seccomp/profile')?.file ?? '.';
  // join, not resolve: relative stays relative, as for extends.
  const path = isAbsolute(name) ? name : join(dirname(setBy), name);
  let imported: ImportedProfile;
  try {
    imported = { path, filter: loadOciProfile(path, { caps: policy.capabilities?.bounding ?? [] }) };
  } catch (err) {
    throw new PolicyError([{ ...locate('/seccomp/profile'), message: `seccomp.profile: ${(err as Error).message}` }]);
  }
  return imported;
}

/** Plans the seccomp section on top of its profile; what cannot combine is an error at its position. */
function planSeccomp(policy: Policy, profile: ImportedProfile | undefined, locate: Locate): SeccompPlan | null {
  if (!policy.seccomp) return null;
  const { filter, conflicts } = planSeccompSection(policy.seccomp, profile);
  if (conflicts.length) throw new PolicyError(sortDiagnostics(conflicts.map((c) => ({ ...locate(c.pointer), message: c.message }))));
  return filter;
}

function safeRealpath(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return resolve(path);
  }
}

export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
}
