// Reads an OCI/Docker seccomp profile file and imports it. Errors name the file, and for JSON
// syntax errors the line and column in it: V8's own messages often give no position.
import type { SeccompPlan } from '../plan/types.js';
import { importOciProfile, type OciImportOptions } from './oci.js';
import { readBoundedText } from '../policy/read.js';

/** Where JSON.parse would fail in `text`, and why: a strict scanner of the JSON grammar. */
export function jsonErrorAt(text: string): { offset: number; message: string } | null {
  let i = 0;
  const fail = (message: string): never => {
    throw { offset: i, message };
  };
  const describe = () => (i >= text.length ? 'unexpected end of file' : `unexpected ${JSON.stringify(text[i])}`);
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const expect = (c: string) => (text[i] === c ? i++ : fail(`expected '${c}', ${describe()}`));
  const string = () => {
    expect('"');
    while (text[i] !== '"') {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c < 0x20) fail('control character in string');
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('bad \\u escape');
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail('bad escape');
      }
      i++;
    }
    i++;
  };
  const value = (depth: number): void => {
    if (depth > 512) fail('nesting too deep');
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      space();
      if (text[i] === '}') return void i++;
      for (;;) {
        space();
        if (text[i] !== '"') fail(`expected a property name in double quotes, ${describe()}`);
        string();
        space();
        expect(':');
        value(depth + 1);
        space();
        if (text[i] === '}') return void i++;
        if (text[i] !== ',') fail(`expected ',' or '}', ${describe()}`);
        i++;
      }
    }
    if (c === '[') {
      i++;
      space();
      if (text[i] === ']') return void i++;
      for (;;) {
        value(depth + 1);
        space();
        if (text[i] === ']') return void i++;
        if (text[i] !== ',') fail(`expected ',' or ']', ${describe()}`);
        i++;
      }
    }
    if (c === '"') return string();
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (!literal) fail(`expected a value, ${describe()}`);
    i += literal![0].length;
  };
  try {
    value(0);
    space();
    if (i < text.length) fail(`${describe()} after the JSON value`);
    return null;
  } catch (err) {
    return err as { offset: number; message: string };
  }
}

function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

/** Reads and imports the profile at `path`; throws an Error whose message says what is wrong and where. */
export function loadOciProfile(path: string, options: OciImportOptions): SeccompPlan {
  let text: string;
  try {
    text = readBoundedText(path);
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const at = jsonErrorAt(text);
    throw new Error(at ? `${path}:${lineCol(text, at.offset)}: invalid JSON: ${at.message}` : `${path}: invalid JSON: ${(err as Error).message}`);
  }
  try {
    return importOciProfile(json, options);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message.replace(/^seccomp profile: /, '')}`);
  }
}
