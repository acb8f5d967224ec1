// Bundles init (dist/runtime/init.js and the ~25 ES modules it imports) into one CommonJS file,
// dist/runtime/init.cjs, which the supervisor spawns for every build: Node's ES module loader
// resolving, linking and evaluating each module cost init more CPU at start-up than the code
// itself. Runs after tsc. koffi stays outside, loaded through its own CommonJS build.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const entry = fileURLToPath(new URL('dist/runtime/init.js', root));
const outfile = fileURLToPath(new URL('dist/runtime/init.cjs', root));

// In the bundle import.meta.url is the bundle's own URL, not that of the module it came from. Only
// modules that need no more than "somewhere in this package" (lib.ts, to require koffi) may use it.
const META_ALLOWED = ['dist/ffi/lib.js'];

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['koffi'],
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  metafile: true,
  logLevel: 'warning',
  absWorkingDir: fileURLToPath(root),
});

const misplaced = Object.keys(result.metafile.inputs).filter(
  (input) => !META_ALLOWED.includes(input) && readFileSync(new URL(input, root), 'utf8').includes('import.meta'),
);
if (misplaced.length) {
  console.error(`bundle-init: import.meta in ${misplaced.join(', ')}: in ${outfile} it would name the bundle, not the module`);
  process.exit(1);
}
console.log(`wrote ${outfile} (${Object.keys(result.metafile.inputs).length} modules)`);
