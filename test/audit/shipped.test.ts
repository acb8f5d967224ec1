// The shipped policies: exactly the findings an expert expects, and scores in the right order.
import t from 'tap';
import { auditFile } from '../../src/audit/index.js';
import { join } from 'node:path';
import { FIXED_OUTPUT, GUIX_DEFAULT, POLICIES, STRICT, ruleIds } from './fixtures/helpers.js';

const ADVICE = ['STK-FS-004', 'STK-ID-002', 'STK-ID-003'];
const GUIX_GAPS = ['STK-LIM-001', 'STK-LIM-002', 'STK-LIM-004', 'STK-LIM-005', 'STK-LL-001', 'STK-SEC-001'];

t.test('strict: only the advice every guix-based policy gets', async (t) => {
  const report = auditFile(STRICT);
  t.same(ruleIds(report), ADVICE);
  t.notOk(report.findings.some((f) => f.concern === 'seccomp'), 'no seccomp findings');
});

t.test('guix-default: what guix-daemon leaves open', async (t) => {
  t.same(ruleIds(auditFile(GUIX_DEFAULT)), [...ADVICE, ...GUIX_GAPS].sort());
});

t.test('fixed-output: guix-default plus the network', async (t) => {
  t.same(ruleIds(auditFile(FIXED_OUTPUT)), [...ADVICE, ...GUIX_GAPS, 'STK-NET-003'].sort());
});

t.test("remote-exec: strict's findings and score; its input root at a fixed path, so no STK-FS-008", async (t) => {
  const report = auditFile(join(POLICIES, 'remote-exec.yaml'));
  t.same(ruleIds(report), ADVICE);
  t.equal(report.score, auditFile(STRICT).score);
});

t.test('scores: strict < guix-default < fixed-output, with levels', async (t) => {
  const [strict, guix, fixed] = [STRICT, GUIX_DEFAULT, FIXED_OUTPUT].map((f) => auditFile(f));
  t.ok(strict.score < guix.score, `strict ${strict.score} < guix-default ${guix.score}`);
  t.ok(guix.score < fixed.score, `guix-default ${guix.score} < fixed-output ${fixed.score}`);
  t.equal(strict.level, 'SAFE');
  t.equal(guix.level, 'OK');
  t.equal(fixed.level, 'MEDIUM');
});

t.test('a finding about a left-out setting points at the start of the file and says it is the default', async (t) => {
  const finding = auditFile(GUIX_DEFAULT).findings.find((f) => f.ruleId === 'STK-SEC-001')!;
  t.match(finding, { file: GUIX_DEFAULT, line: 4, col: 1, isDefault: true });
  t.match(finding.message, /the default/);
});
