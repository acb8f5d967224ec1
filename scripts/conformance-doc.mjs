// Regenerates the catalogue table of docs/conformance.md from the check modules (run after
// `npm run build`), so each check's property is written once, in src/conformance/checks.
import { readFileSync, writeFileSync } from 'node:fs';
import { catalogueMarkdown } from '../dist/conformance/doc.js';

const file = new URL('../docs/conformance.md', import.meta.url);
const doc = readFileSync(file, 'utf8');
const block = /(<!-- catalogue:begin[^>]*-->\n)[\s\S]*(<!-- catalogue:end -->)/;
if (!block.test(doc)) throw new Error('docs/conformance.md: no <!-- catalogue:begin --> … <!-- catalogue:end --> block');
writeFileSync(file, doc.replace(block, (_, begin, end) => begin + catalogueMarkdown() + end));
