// `stockade run --help` tells a packager what the builder's PATH and NIX_BUILD_CORES are.
import t from 'tap';
import { main } from '../../src/cli/run.js';
import { run } from '../audit/fixtures/helpers.js';

t.test('run --help: PATH is /path-not-set unless set; NIX_BUILD_CORES=0 means all cores', async (t) => {
  const { code, stdout } = await run(main, ['--help']);
  t.equal(code, 0);
  const text = stdout.replace(/\s+/g, ' ');
  t.match(text, /PATH is \/path-not-set, as under guix, unless the spec or --env sets it/);
  t.match(text, /NIX_BUILD_CORES \(default 0, which means "all cores" as under guix\)/);
});
