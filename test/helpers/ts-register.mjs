// The test runner's TypeScript loader (package.json's tap.node-arg): test files and the src/
// modules they import are transpiled by esbuild, types stripped and nothing checked (`npm test`
// type-checks them with tsc first). ts-node, tap's own loader, loads the TypeScript compiler
// into every test process: ~1.2 s of CPU per test file.
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
