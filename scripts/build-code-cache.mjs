// Makes the V8 code cache of the generated bundles in dist/ (dist/policy/compiled.js): checks the
// shipped policies once, so that the cache also holds the functions a check compiles, and writes
// the cache of each bundle it loaded. Runs after tsc; V8 accepts a cache only from this node and
// with the same V8 flags, so it runs with the CLI's (its #! line): --single-threaded.
import { readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

if (!process.execArgv.includes('--single-threaded')) {
  console.error('build-code-cache: run it as `node --single-threaded scripts/build-code-cache.mjs`, as the CLI runs (V8 refuses a cache made with other flags)');
  process.exit(1);
}

const dist = new URL('../dist/policy/', import.meta.url);
// Made from scratch, not from a previous build's cache.
for (const name of readdirSync(dist).filter((f) => f.endsWith('.v8cache'))) rmSync(new URL(name, dist));

const { writeCodeCaches } = await import(new URL('compiled.js', dist).href);
const { loadPolicy } = await import(new URL('load.js', dist).href);
const policies = new URL('../policies/', import.meta.url);
for (const name of readdirSync(policies).filter((f) => f.endsWith('.yaml'))) loadPolicy(fileURLToPath(new URL(name, policies)));
for (const file of writeCodeCaches()) console.log(`wrote ${file}`);
