// Compiles the JSON Schemas into standalone validator modules once, at build time, so `stockade`
// never compiles a schema at start-up. Two modules, so that checking a policy loads only the
// policy's code: the policy and build spec validators (CommonJS, which dist/policy/compiled.js
// loads with a V8 code cache) and the daemon's (ESM, imported by src/daemon).
import { readFileSync, writeFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import standaloneCode from 'ajv/dist/standalone/index.js';

const load = (name) => JSON.parse(readFileSync(new URL(`../schemas/${name}`, import.meta.url), 'utf8'));
const policy = load('policy.schema.json');
const spec = load('spec.schema.json');
const protocol = load('daemon-protocol.schema.json');
const daemonConfig = load('daemon-config.schema.json');
const options = { allErrors: true, strict: true };

const policyAjv = new Ajv2020({ ...options, code: { source: true, esm: false } });
policyAjv.addSchema(policy).addSchema(spec);
writeFileSync(
  new URL('../src/policy/schema-validator.generated.cjs', import.meta.url),
  standaloneCode(policyAjv, { validatePolicy: policy.$id, validateSpec: spec.$id }),
);

const daemonAjv = new Ajv2020({ ...options, code: { source: true, esm: true } });
daemonAjv.addSchema(spec).addSchema(protocol).addSchema(daemonConfig);
let code = standaloneCode(daemonAjv, {
  validateDaemonRequest: `${protocol.$id}#/$defs/request`,
  validateDaemonEvent: `${protocol.$id}#/$defs/event`,
  validateDaemonConfig: daemonConfig.$id,
});
// ajv emits require() for its runtime helpers even in ESM mode; turn them into imports.
const imports = [];
code = code.replace(/require\("(ajv\/dist\/runtime\/[a-z0-9]+)"\)/g, (_, mod) => {
  const id = `__ajv_runtime_${imports.length}`;
  imports.push(`import ${id} from "${mod}.js";`);
  return id;
});
writeFileSync(new URL('../src/daemon/schema-validator.generated.js', import.meta.url), imports.join('') + code);
