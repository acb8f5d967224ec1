// The daemon's wire protocol (schemas/daemon-protocol.schema.json): newline-delimited JSON,
// requests from clients, events from the daemon. Every line read is checked against the schema.
import { validateDaemonEvent, validateDaemonRequest } from './schema-validator.generated.js';
import { displayPath } from '../policy/validate.js';
import type { Error as ErrorEvent, Event as WireEvent, Request, Version } from './protocol-types.generated.js';

export const PROTOCOL_VERSION: Version = 1;
/** A longer line is refused: a spec is small, and the daemon must not buffer without bound. */
export const MAX_LINE_BYTES = 1 << 20;
/**
 * Deeper nesting is refused before JSON.parse: the schema check and the messages built from a
 * parsed value recurse, and a 400 KB line of brackets exhausts the stack. A request is 4 deep.
 */
export const MAX_DEPTH = 64;

export type { BuildRequest, CancelRequest, Request } from './protocol-types.generated.js';

/** An event as it travels, version included. */
export type { WireEvent };
/** An event as the daemon builds it; encodeEvent adds the protocol version. */
export type Event = WithoutVersion<WireEvent>;
type WithoutVersion<E> = E extends unknown ? Omit<E, 'version'> : never;
export type ErrorCode = ErrorEvent['code'];

export class ProtocolError extends Error {}

/** Whether objects and arrays in a JSON text nest deeper than `limit`: one pass, no recursion, stopping there. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

type Validator = { (value: unknown): boolean; errors?: unknown };
const checkRequest = validateDaemonRequest as unknown as Validator;
const checkEvent = validateDaemonEvent as unknown as Validator;

/** Parses one request line; throws ProtocolError saying what is wrong with it. */
export function parseRequest(line: string): Request {
  if (Buffer.byteLength(line) > MAX_LINE_BYTES) throw new ProtocolError(`request longer than ${MAX_LINE_BYTES} bytes`);
  if (jsonDepthExceeds(line, MAX_DEPTH)) throw new ProtocolError(`request nested deeper than ${MAX_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new ProtocolError(`request is not JSON: ${(err as Error).message}`);
  }
  if (typeof value === 'object' && value !== null && 'version' in value && value.version !== PROTOCOL_VERSION) {
    const shown = JSON.stringify(value.version) ?? String(value.version);
    throw new ProtocolError(`protocol version ${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown} is not supported (this daemon speaks ${PROTOCOL_VERSION})`);
  }
  if (!checkRequest(value)) throw new ProtocolError(`invalid request: ${describeErrors(checkRequest.errors)}`);
  return value as Request;
}

/** Serialises an event as one line; the schema check catches a daemon bug before a client does. */
export function encodeEvent(event: Event): string {
  const wire = { version: PROTOCOL_VERSION, ...event };
  if (!checkEvent(wire)) throw new Error(`daemon bug: invalid ${event.type} event: ${describeErrors(checkEvent.errors)}`);
  return JSON.stringify(wire) + '\n';
}

/** Checks an event received by a client. */
export function parseEvent(line: string): WireEvent {
  const value: unknown = JSON.parse(line);
  if (!checkEvent(value)) throw new ProtocolError(`invalid event from the daemon: ${describeErrors(checkEvent.errors)}`);
  return value as WireEvent;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

function describeErrors(errors: unknown): string {
  // oneOf reports every branch; the most specific (deepest) errors say what is wrong.
  const list = ((errors ?? []) as AjvError[]).filter((e) => e.keyword !== 'oneOf');
  const depth = Math.max(...list.map((e) => e.instancePath.length), 0);
  const shown = list.filter((e) => e.instancePath.length === depth && !(e.keyword === 'const' && e.instancePath === '/type'));
  const unique = [...new Set((shown.length ? shown : list).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` '${String(e.params.additionalProperty)}'` : '';
    return `${displayPath(e.instancePath)}: ${e.message ?? e.keyword}${extra}`;
  }))];
  return unique.slice(0, 5).join('; ') || 'does not match the protocol schema';
}
