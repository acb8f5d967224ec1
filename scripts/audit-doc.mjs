// Regenerates the rule table of docs/audit.md from the audit registry (run after `npm run build`),
// so rule texts and weights are written once, in src/audit.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderRulesMarkdown } from '../dist/audit/format/rules.js';

const file = new URL('../docs/audit.md', import.meta.url);
const doc = readFileSync(file, 'utf8');
const block = /(<!-- rules:begin[^>]*-->\n)[\s\S]*(<!-- rules:end -->)/;
if (!block.test(doc)) throw new Error('docs/audit.md: no <!-- rules:begin --> … <!-- rules:end --> block');
writeFileSync(file, doc.replace(block, (_, begin, end) => begin + renderRulesMarkdown() + end));
