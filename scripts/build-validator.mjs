// Compiles schemas/policy.schema.json into a standalone validator module once, at build time,
// so `stockade` never compiles the schema at start-up.
import { readFileSync, writeFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import standaloneCode from 'ajv/dist/standalone/index.js';

const schema = JSON.parse(readFileSync(new URL('../schemas/policy.schema.json', import.meta.url), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true, code: { source: true, esm: true } });
const validate = ajv.compile(schema);
const code = standaloneCode(ajv, validate);
writeFileSync(new URL('../src/policy/schema-validator.generated.js', import.meta.url), code);
