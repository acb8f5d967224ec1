// Bundles init (dist/runtime/init.js and the ~20 ES modules it imports) into one CommonJS file,
// dist/runtime/init.cjs, which the supervisor spawns for every build: Node's ES module loader
// resolving, linking and evaluating each module was most of init's start-up cost beyond node's own
// (bench/ffi.mjs). Runs after tsc. koffi stays outside, loaded through its own CommonJS build.
// No V8 code cache for it (unlike dist/policy's bundles): for its ~40 KB the cache saved 0.3% of
// init's instructions under callgrind, less than the launcher loading it through node:vm cost.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = new URL('../', import.meta.url);

// In the bundle import.meta.url is the bundle's own URL, not that of the module it came from. Only
// modules that need no more than "somewhere in this package" (lib.ts, to require koffi) may use it.
const META_ALLOWED = ['dist/ffi/lib.js'];

/** esbuild options of the init bundle; bench/ffi.mjs bundles its own entry with the same. */
export const INIT_BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['koffi'],
  define: { 'import.meta.url': '__bundleUrl' },
  // 'use strict' first: after another statement it would not be a directive, and the modules,
  // strict as ES modules, would run in sloppy mode.
  banner: { js: "'use strict';\nconst __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  metafile: true,
  logLevel: 'warning',
  absWorkingDir: fileURLToPath(root),
};

/** Bundles `options` (entry, output) as init is; throws if a bundled module uses import.meta where it must not. */
export async function bundleLikeInit(options) {
  const result = await build({ ...INIT_BUNDLE_OPTIONS, ...options });
  const inputs = Object.keys(result.metafile.inputs);
  const misplaced = inputs.filter((input) => input.startsWith('dist/') && !META_ALLOWED.includes(input) && readFileSync(new URL(input, root), 'utf8').includes('import.meta'));
  if (misplaced.length) throw new Error(`import.meta in ${misplaced.join(', ')}: in the bundle it would name the bundle, not the module`);
  return inputs;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const outfile = fileURLToPath(new URL('dist/runtime/init.cjs', root));
  try {
    const inputs = await bundleLikeInit({ entryPoints: [fileURLToPath(new URL('dist/runtime/init.js', root))], outfile });
    console.log(`wrote ${outfile} (${inputs.length} modules)`);
  } catch (err) {
    console.error(`bundle-init: ${err.message}`);
    process.exit(1);
  }
}
