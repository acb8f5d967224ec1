// stockade audit: formats (text, JSON, SARIF validated against the SARIF 2.1.0 schema), gates, rule list, docs.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';
import { Ajv } from 'ajv';
import { main } from '../../src/cli/audit.js';
import { RULES } from '../../src/audit/index.js';
import { renderRulesMarkdown } from '../../src/audit/format/rules.js';
import { FIXED_OUTPUT, GUIX_DEFAULT, POLICIES, STRICT, craft, run } from './fixtures/helpers.js';

const SARIF_SCHEMA = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'sarif-2.1.0-subset.schema.json'), 'utf8'));

t.test('text: grouped by concern, FILE:LINE:COL: SEVERITY ID message, why/fix with --verbose', async (t) => {
  const { code, stdout } = await run(main, [GUIX_DEFAULT]);
  t.equal(code, 0);
  t.match(stdout, /exposure 4\.9 OK/);
  t.match(stdout, /\n  seccomp\n    .*guix-default\.yaml:4:1: MEDIUM STK-SEC-001 no seccomp filter/);
  t.notMatch(stdout, /why:/);
  t.notMatch(stdout, /\x1b\[/, 'no colour when not a terminal');
  const verbose = await run(main, ['--verbose', GUIX_DEFAULT]);
  t.match(verbose.stdout, /STK-SEC-001.*\n      why: .*\n      fix: /);
});

t.test('several policies: one report each and a summary table', async (t) => {
  const { stdout } = await run(main, [STRICT, GUIX_DEFAULT, FIXED_OUTPUT]);
  t.match(stdout, /POLICY +SCORE +LEVEL/);
  t.match(stdout, /strict\.yaml +0\.2 +SAFE/);
  t.match(stdout, /fixed-output\.yaml +6\.4 +MEDIUM/);
});

t.test('JSON', async (t) => {
  const { stdout } = await run(main, ['--json', STRICT, GUIX_DEFAULT]);
  const json = JSON.parse(stdout);
  t.same(json.policies.map((p: { policy: string }) => p.policy), ['strict', 'guix-default']);
  t.match(json.policies[1].findings.find((f: { ruleId: string }) => f.ruleId === 'STK-SEC-001'), { severity: 'medium', file: GUIX_DEFAULT, line: 4, col: 1, default: true, points: 3 });
});

t.test('SARIF validates against the SARIF 2.1.0 schema and carries the rule metadata', async (t) => {
  const dir = t.testdir({ 'broken.yaml': 'stockade: 1\nname: broken\nnetwork: wide\n' });
  const { code, stdout } = await run(main, ['--sarif', STRICT, FIXED_OUTPUT, join(dir, 'broken.yaml')]);
  t.equal(code, 1, 'an invalid policy fails the run');
  const log = JSON.parse(stdout);
  const validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(SARIF_SCHEMA);
  t.ok(validate(log), JSON.stringify(validate.errors));
  const run0 = log.runs[0];
  t.equal(run0.tool.driver.rules.length, RULES.length);
  t.match(run0.tool.driver.rules.find((r: { id: string }) => r.id === 'STK-SEC-001'), {
    shortDescription: { text: String }, fullDescription: { text: String }, help: { text: /Fix:/ },
    defaultConfiguration: { level: 'warning' }, properties: { 'security-severity': '5.5' },
  });
  const result = run0.results.find((r: { ruleId: string }) => r.ruleId === 'STK-NET-003');
  t.match(result, {
    level: 'warning',
    locations: [{ physicalLocation: { artifactLocation: { uri: relative(process.cwd(), FIXED_OUTPUT) }, region: { startLine: 10, startColumn: 10 } } }],
  });
  t.equal(run0.tool.driver.rules[result.ruleIndex].id, 'STK-NET-003');
  t.equal(run0.invocations[0].executionSuccessful, false);
  t.match(run0.invocations[0].toolExecutionNotifications[0], { level: 'error', message: { text: /network/ } });
  // The schema is strict enough to catch a wrong level.
  result.level = 'critical';
  t.notOk(validate(log), 'an invalid level is refused');
});

t.test('--fail-above and --fail-on gate CI', async (t) => {
  t.equal((await run(main, ['--fail-above', '1', STRICT])).code, 0);
  t.equal((await run(main, ['--fail-above', '1', STRICT, GUIX_DEFAULT])).code, 1);
  t.equal((await run(main, ['--fail-above', '4.9', GUIX_DEFAULT])).code, 0, 'at the threshold is not above it');
  t.equal((await run(main, ['--fail-on', 'medium', STRICT])).code, 0);
  t.equal((await run(main, ['--fail-on', 'low', STRICT])).code, 1);
  t.equal((await run(main, ['--fail-on', 'medium', GUIX_DEFAULT])).code, 1);
  t.equal((await run(main, [STRICT, GUIX_DEFAULT])).code, 0, 'no gate: findings alone do not fail');
});

t.test('usage errors exit 2; an invalid policy prints its diagnostics and exits 1', async (t) => {
  for (const argv of [[], ['--fail-on', 'severe', STRICT], ['--fail-above', 'x', STRICT], ['--fail-above', '11', STRICT], ['--json', '--sarif', STRICT], ['--bogus', STRICT]]) {
    t.equal((await run(main, argv)).code, 2, argv.join(' '));
  }
  const { base } = craft(t.testdir(), STRICT, 'devices: [floppy]\n');
  const { code, stderr } = await run(main, [base]);
  t.equal(code, 1);
  t.match(stderr, /base\.yaml:4:\d+: /);
});

t.test('--list-rules', async (t) => {
  const text = await run(main, ['--list-rules']);
  t.equal(text.code, 0);
  for (const rule of RULES) t.match(text.stdout, new RegExp(`^${rule.id} +${rule.severity} `, 'm'));
  const json = JSON.parse((await run(main, ['--list-rules', '--json'])).stdout);
  t.match(json[0], { id: String, severity: String, weight: Number, why: String, fix: String });
});

t.test('docs/audit.md holds the rule table generated from the registry', async (t) => {
  const doc = readFileSync(join(POLICIES, '../docs/audit.md'), 'utf8');
  const generated = /<!-- rules:begin[^>]*-->\n([\s\S]*)<!-- rules:end -->/.exec(doc);
  t.ok(generated, 'the generated block is there');
  t.equal(generated?.[1], renderRulesMarkdown(), 'up to date (regenerate: node scripts/audit-doc.mjs after npm run build)');
});

t.test('relative paths in SARIF are relative to the working directory', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'p.yaml'), `stockade: 1\nname: p\nextends: ${STRICT}\nhostname: box\n`);
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const log = JSON.parse((await run(main, ['--sarif', 'p.yaml'])).stdout);
    const uri = log.runs[0].results.find((r: { ruleId: string }) => r.ruleId === 'STK-NET-004').locations[0].physicalLocation.artifactLocation.uri;
    t.equal(uri, 'p.yaml');
  } finally {
    process.chdir(cwd);
  }
});

t.test("docs/audit.md's table of the shipped policies' scores is current", async (t) => {
  const doc = readFileSync(join(POLICIES, '../docs/audit.md'), 'utf8');
  const { auditFile } = await import('../../src/audit/index.js');
  for (const file of [STRICT, GUIX_DEFAULT, FIXED_OUTPUT]) {
    const r = auditFile(file);
    t.match(doc, new RegExp(`\\| \`${r.policyName}\` \\| ${r.score.toFixed(1)} \\| ${r.level} \\|`), r.policyName);
  }
});
