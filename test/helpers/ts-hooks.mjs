// Module hooks registered by ts-register.mjs; they run on the loader's own thread.
import { readFile } from 'node:fs/promises';
import { transform } from 'esbuild';

/** `./x.js` imports a `./x.ts` beside it, as tsc's NodeNext resolution lets the sources say. */
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !/^(\.{1,2}\/|\/|file:)/.test(specifier) || !specifier.endsWith('.js')) throw err;
    return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const source = await readFile(new URL(url), 'utf8');
  const { code } = await transform(source, { loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: url });
  return { format: 'module', source: code, shortCircuit: true };
}
