// The catalogue: stable, well-formed IDs covering every isolation concern, documented once.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { CATALOGUE } from '../../src/conformance/catalogue.js';
import { catalogueMarkdown } from '../../src/conformance/doc.js';
import { ensureBuilt, ROOT } from '../helpers/child.js';

const CLI = `${ROOT}dist/cli/main.js`;
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, 'conformance', ...args], { encoding: 'utf8' });

t.before(ensureBuilt);

t.test('IDs are unique and name their concern or the escape they replay', async (t) => {
  const ids = CATALOGUE.map((c) => c.id);
  t.equal(new Set(ids).size, ids.length, 'no ID twice');
  for (const c of CATALOGUE) t.match(c.id, /^((FS|DEV|PRV|KRN|NET|RES|ENV|OUT)-\d{2}|CVE-\d{4}-\d{4,}|GUIX-[A-Z]+)$/, `${c.id} well-formed`);
  for (const concern of ['FS', 'DEV', 'PRV', 'KRN', 'NET', 'RES', 'ENV', 'OUT']) t.ok(ids.some((id) => id.startsWith(`${concern}-`)), `${concern} checks exist`);
  for (const cve of ['CVE-2021-27851', 'CVE-2024-27297', 'CVE-2024-38531', 'CVE-2024-52867', 'CVE-2025-46415', 'CVE-2025-46416', 'CVE-2025-52992', 'CVE-2017-5226', 'GUIX-KILLUSER']) {
    t.ok(ids.includes(cve), `${cve} has a regression check`);
  }
  for (const c of CATALOGUE.filter((c) => c.id.startsWith('CVE-') || c.id.startsWith('GUIX-'))) t.ok(c.attack, `${c.id} tells the attack`);
});

t.test('docs/conformance.md holds the catalogue generated from the checks', async (t) => {
  const doc = readFileSync(`${ROOT}docs/conformance.md`, 'utf8');
  const generated = /<!-- catalogue:begin[^>]*-->\n([\s\S]*)<!-- catalogue:end -->/.exec(doc);
  t.equal(generated?.[1], catalogueMarkdown(), 'up to date (regenerate: node scripts/conformance-doc.mjs after npm run build)');
});

t.test('--list prints the catalogue; --help the usage; bad options are usage errors', async (t) => {
  const list = cli('--list');
  t.equal(list.status, 0);
  for (const c of CATALOGUE) t.match(list.stdout, `| ${c.id} |`);
  const json = cli('--list', '--json', '-');
  t.same(JSON.parse(json.stdout).map((c: { id: string }) => c.id), CATALOGUE.map((c) => c.id));
  const help = cli('--help');
  t.equal(help.status, 0);
  t.match(help.stdout, /usage: stockade conformance/);
  t.match(help.stdout, /77 a check could\s+not run on this machine/);
  const unknown = cli('--only', 'FS-01,XYZ-99');
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, 'unknown check ID: XYZ-99');
  const range = cli('--pool-range', '0:4');
  t.equal(range.status, 2);
  t.match(range.stderr, '--pool-range needs FIRST:COUNT[:GID]');
  const missing = cli('--policy', 'no-such-policy');
  t.equal(missing.status, 2);
  t.match(missing.stderr, 'no policy file no-such-policy');
});
