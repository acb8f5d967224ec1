// Generates the TypeScript types of policies, build specs, the daemon protocol and the daemon
// config from schemas/*.json, so a field added to a schema reaches the code without a hand edit
// and the compiler catches code that disagrees with a schema.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileFromFile } from 'json-schema-to-typescript';

const schemas = fileURLToPath(new URL('../schemas/', import.meta.url));
const banner = '// Generated from schemas/*.json by scripts/build-types.mjs at build time; do not edit.\n';
const options = {
  cwd: schemas,
  bannerComment: '',
  // Every $defs entry becomes a named type, referenced or not (the protocol is all $defs).
  unreachableDefinitions: true,
  // Follows each schema: additionalProperties false gives closed types, and maps stay maps.
  additionalProperties: false,
  // Bounded arrays stay arrays, not unions of tuples.
  ignoreMinAndMaxItems: true,
  format: true,
};

async function generate(target, files) {
  const parts = [];
  for (const file of files) parts.push(await compileFromFile(`${schemas}${file}`, options));
  writeFileSync(new URL(`../src/${target}`, import.meta.url), banner + parts.join('\n'));
}

await generate('policy/schema-types.generated.ts', ['policy.schema.json', 'spec.schema.json']);
await generate('daemon/protocol-types.generated.ts', ['daemon-protocol.schema.json']);
await generate('daemon/config-types.generated.ts', ['daemon-config.schema.json']);
