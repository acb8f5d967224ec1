// The lists several layers share are written once in src/policy/lists.ts; the JSON Schemas,
// which cannot import them, must say the same.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHAR_DEVICES, DEVICE_NAMES, GUIX_DEVICES, MADE_DEVICES, POLICY_NAME_PATTERN, SPEC_NAME_MAX_LENGTH, SPEC_NAME_PATTERN } from '../../src/policy/lists.js';
import { DEFAULTS } from '../../src/plan/defaults.js';

const schema = (name: string) => JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'schemas', name), 'utf8'));

t.test('the policy schema names exactly the devices Stockade provides', async (t) => {
  const names: string[] = schema('policy.schema.json').$defs.deviceName.enum;
  t.same([...names].sort(), [...DEVICE_NAMES].sort());
  t.equal(new Set(DEVICE_NAMES).size, CHAR_DEVICES.length + MADE_DEVICES.length, 'a device is either bound from the host or made, not both');
  t.ok(GUIX_DEVICES.every((d) => DEVICE_NAMES.includes(d)), "guix-daemon's set is among them");
  t.same(DEFAULTS.devices, GUIX_DEVICES, "a policy without devices gets guix-daemon's set");
});

t.test('the spec schema checks the name as the planner does', async (t) => {
  const name = schema('spec.schema.json').properties.name;
  t.equal(name.pattern, SPEC_NAME_PATTERN);
  t.equal(name.maxLength, SPEC_NAME_MAX_LENGTH);
});

t.test('every schema naming a policy uses the one policy-name pattern', async (t) => {
  t.equal(schema('policy.schema.json').properties.name.pattern, POLICY_NAME_PATTERN, 'a policy names itself');
  t.equal(schema('daemon-protocol.schema.json').$defs.buildRequest.properties.policy.pattern, POLICY_NAME_PATTERN, 'a build request names a policy');
  const access = schema('daemon-config.schema.json').properties.access.items.properties.policies.items.pattern;
  t.equal(access, `^(\\*|${POLICY_NAME_PATTERN.slice(1, -1)})$`, "an access rule names policies, or '*'");
});
