// Every audit rule, by stable ID, joined with its weight from the exposure table.
import { capabilityRules } from './rules/capabilities.js';
import { deviceRules } from './rules/devices.js';
import { environmentRules } from './rules/environment.js';
import { filesystemRules } from './rules/filesystem.js';
import { identityRules } from './rules/identity.js';
import { landlockRules } from './rules/landlock.js';
import { limitRules } from './rules/limits.js';
import { networkRules } from './rules/network.js';
import { outputRules } from './rules/outputs.js';
import { seccompRules } from './rules/seccomp.js';
import { timeoutRules } from './rules/timeouts.js';
import { CONCERNS, type RegisteredRule, type Rule } from './types.js';
import { EXPOSURE_WEIGHTS } from './weights.js';

function register(rules: Rule[]): RegisteredRule[] {
  const seen = new Set<string>();
  const registered = rules.map((rule) => {
    if (seen.has(rule.id)) throw new Error(`audit rule ${rule.id} is registered twice`);
    seen.add(rule.id);
    const weight = EXPOSURE_WEIGHTS[rule.id];
    if (weight === undefined) throw new Error(`audit rule ${rule.id} has no weight in the exposure table`);
    return { ...rule, weight };
  });
  const stray = Object.keys(EXPOSURE_WEIGHTS).filter((id) => !seen.has(id));
  if (stray.length) throw new Error(`exposure table weighs unknown rules: ${stray.join(', ')}`);
  return registered.sort((a, b) => CONCERNS.indexOf(a.concern) - CONCERNS.indexOf(b.concern) || a.id.localeCompare(b.id));
}

export const RULES: readonly RegisteredRule[] = register([
  ...filesystemRules, ...outputRules, ...deviceRules, ...identityRules, ...capabilityRules, ...networkRules,
  ...seccompRules, ...landlockRules, ...limitRules, ...environmentRules, ...timeoutRules,
]);

export function ruleById(id: string): RegisteredRule | undefined {
  return RULES.find((r) => r.id === id);
}
