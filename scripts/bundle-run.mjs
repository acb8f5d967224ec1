// Bundles `stockade run` (dist/cli/run.js and the ~65 ES modules it imports, lazily or not) into
// one CommonJS file, dist/cli/run.cjs, which dist/cli/main.js loads: Node's ES module loader
// resolving, reading, compiling and linking each module was a third of a cold run's CPU. Runs
// after tsc. A module imported lazily stays lazy in the bundle (esbuild evaluates it at its first
// import()). koffi stays outside. No V8 code cache for it: with one made at build time (the
// bundle loaded, not run) a cold run cost no less CPU (2.75 vs 2.65 x node -e 0, same run).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = new URL('../', import.meta.url);
const dist = fileURLToPath(new URL('dist/', root));

/**
 * Each module's import.meta.url becomes its own file's URL, found from where the bundle lies:
 * modules name files next to themselves (init.cjs, the yaml bundle, package.json), and the plan
 * cache's key names the build through its own file, as when run unbundled.
 */
const ownUrls = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      if (!args.path.startsWith(dist)) return undefined;
      const path = relative(dist, args.path);
      const contents = readFileSync(args.path, 'utf8').replaceAll('import.meta.url', `__moduleUrl(${JSON.stringify(path)})`);
      if (contents.includes('import.meta')) throw new Error(`import.meta other than import.meta.url in dist/${path}`);
      return { contents, loader: 'js' };
    });
  },
};

/** Bundles dist/cli/run.js into `outfile` (in dist/cli/, which __moduleUrl counts from); returns the modules it holds. */
export async function bundleRun(outfile) {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('dist/cli/run.js', root))],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['koffi'],
    plugins: [ownUrls],
    banner: {
      // First, so that the modules stay in strict mode as ES modules are.
      js: "'use strict';\nconst __distUrl = require('node:url').pathToFileURL(require('node:path').join(__dirname, '..', '/')).href;\n" +
        'const __moduleUrl = (path) => new URL(path, __distUrl).href;',
    },
    metafile: true,
    logLevel: 'warning',
    absWorkingDir: fileURLToPath(root),
  });
  return Object.keys(result.metafile.inputs);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const outfile = fileURLToPath(new URL('dist/cli/run.cjs', root));
  try {
    const inputs = await bundleRun(outfile);
    console.log(`wrote ${outfile} (${inputs.length} modules)`);
  } catch (err) {
    console.error(`bundle-run: ${err.message}`);
    process.exit(1);
  }
}
