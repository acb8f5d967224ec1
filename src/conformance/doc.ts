// The catalogue as a Markdown table, for docs/conformance.md and `conformance --list`.
import { CATALOGUE } from './catalogue.js';

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function catalogueMarkdown(): string {
  const rows = CATALOGUE.map((c) => `| ${c.id} | ${cell(c.property)}${c.attack ? ` — attack: ${cell(c.attack)}` : ''} | ${cell(c.proves.join(', '))} | ${c.kind === 'probe' ? 'probe' : 'own builds'} |`);
  return ['| ID | property | proves | how |', '|---|---|---|---|', ...rows].join('\n') + '\n';
}
