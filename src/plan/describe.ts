// Plan entries as text, for messages and for explain: the setting behind an entry
// (`policy.yaml:12:7: filesystem.paths[1]`), a mount's source, a generated file's content.
import { displayPath } from '../policy/pointer.js';
import type { BindSource, EtcText, FieldOrigin, Mount } from './types.js';

export function describeOrigin(origin: FieldOrigin): string {
  const at = typeof origin.at === 'string' ? origin.at : `${origin.at.file}:${origin.at.line}:${origin.at.col}`;
  return `${at}: ${displayPath(origin.pointer)}`;
}

/** The host path a bind mounts, when the Plan names one (not for directories made per build). */
export function bindHostPath(source: BindSource): string | undefined {
  return source.kind === 'host' || source.kind === 'input' ? source.path : undefined;
}

/** What a mount puts at its target: a host path, a directory of the host build directory, or a fresh filesystem's type. */
export function describeSource(m: Mount): string {
  if (m.type !== 'bind') return m.type;
  const source = m.source;
  if (source.kind === 'tree') return `(the caller's ${source.name})`;
  return bindHostPath(source) ?? (source.kind === 'build-dir' ? '(host build dir)/top' : `(host build dir)/outputs/${source.kind === 'outputs-dir' ? source.index : ''}`);
}

/** A generated file's text; `ids` gives the build user's uid and gid, or how to show them (explain: `{uid}`). */
export function etcText(content: EtcText, ids: Record<'uid' | 'gid', number | string>): string {
  return content.map((piece) => (typeof piece === 'string' ? piece : String(ids[piece.id]))).join('');
}
