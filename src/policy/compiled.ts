// Loads the generated CommonJS bundles (the yaml parser, the policy validator) with a V8 code
// cache: compiling and lazily recompiling their ~430 KB was a large part of every start of
// `stockade validate`. The cache is made by `npm run build` (scripts/build-code-cache.mjs) on the
// machine itself, as V8 accepts it only from the same V8 version and flags; without a cache, or
// with one V8 refuses, the bundle is compiled as usual.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** The source a cache was made from precedes the V8 data: V8 itself checks only its length. */
const LENGTH_BYTES = 4;

const loaded = new Map<string, { source: Buffer; script: Script }>();

export function codeCacheFile(path: string): string {
  return `${path}.v8cache`;
}

function cachedDataFor(path: string, source: Buffer): Buffer | undefined {
  let cache: Buffer;
  try {
    cache = readFileSync(codeCacheFile(path));
  } catch {
    return undefined;
  }
  if (cache.length < LENGTH_BYTES) return undefined;
  const length = cache.readUInt32LE(0);
  const madeFrom = cache.subarray(LENGTH_BYTES, LENGTH_BYTES + length);
  return length === source.length && madeFrom.equals(source) ? cache.subarray(LENGTH_BYTES + length) : undefined;
}

/** Runs a CommonJS file as Node's loader would (same wrapper arguments) and returns its exports. */
export function loadCompiled(path: string): unknown {
  const source = readFileSync(path);
  // On the first line, so that line numbers in stack traces stay those of the file.
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`;
  const script = new Script(wrapped, { filename: path, cachedData: cachedDataFor(path, source) });
  loaded.set(path, { source, script });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(path), module, path, dirname(path));
  return module.exports;
}

/**
 * Writes the code cache of every file loaded so far. Made after they ran, the cache also holds the
 * functions V8 compiled lazily on the way.
 */
export function writeCodeCaches(): string[] {
  return [...loaded].map(([path, { source, script }]) => {
    const length = Buffer.alloc(LENGTH_BYTES);
    length.writeUInt32LE(source.length);
    writeFileSync(codeCacheFile(path), Buffer.concat([length, source, script.createCachedData()]));
    return codeCacheFile(path);
  });
}
