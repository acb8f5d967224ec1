// The audit: a policy file → its Plan (for the example build) → findings and an exposure score.
import { nativeSeccompArch } from '../ffi/arch.js';
import { loadPolicy, type LoadedPolicy, type LoadOptions } from '../policy/load.js';
import { plan } from '../plan/plan.js';
import { DEFAULTS } from '../plan/defaults.js';
import type { Plan } from '../plan/types.js';
import { RULES } from './registry.js';
import { scoreLevel } from './score.js';
import { CONCERNS, type AuditReport, type Finding } from './types.js';

export { RULES } from './registry.js';
export type { AuditReport, Finding, RegisteredRule, Severity } from './types.js';

/** Appended to the message of a finding about a setting no file of the chain sets. */
export const DEFAULT_NOTE = ' (the default: left out of the policy)';

/** Plans the example build, as `explain` does, with no caller environment so the result depends on the policy alone. */
export function planForAudit(loaded: LoadedPolicy): Plan {
  const spec = { ...DEFAULTS.exampleSpec, args: [], env: {}, inputs: [], outputs: [] };
  return plan(loaded, spec, { callerEnv: {}, nativeArch: nativeSeccompArch() });
}

export function auditLoaded(loaded: LoadedPolicy, file: string): AuditReport {
  return auditPlan(planForAudit(loaded), loaded, file);
}

/** Audits a Plan made from `loaded`; positions come from the policy's files. */
export function auditPlan(plan: Plan, loaded: LoadedPolicy, file: string): AuditReport {
  const input = { plan, policy: loaded.policy, loaded };
  const findings: Finding[] = [];
  let total = 0;
  for (const rule of RULES) {
    const hits = rule.check(input);
    const worst = hits.reduce((max, hit, i) => ((hit.badness ?? 1) > (hits[max].badness ?? 1) ? i : max), 0);
    hits.forEach((hit, i) => {
      const isDefault = !loaded.origins.has(hit.pointer);
      const points = i === worst ? rule.weight * Math.min(1, Math.max(0, hit.badness ?? 1)) : 0;
      total += points;
      findings.push({
        ruleId: rule.id,
        concern: rule.concern,
        severity: rule.severity,
        message: isDefault ? `${hit.message}${DEFAULT_NOTE}` : hit.message,
        pointer: hit.pointer,
        ...loaded.locate(hit.pointer),
        isDefault,
        points,
      });
    });
  }
  findings.sort((a, b) => CONCERNS.indexOf(a.concern) - CONCERNS.indexOf(b.concern));
  const { score, level } = scoreLevel(total);
  return { file, policyName: loaded.policy.name, chain: loaded.chain, score, level, findings };
}

/** Loads and audits a policy file; throws PolicyError for an invalid one. */
export function auditFile(file: string, options: LoadOptions = {}): AuditReport {
  return auditLoaded(loadPolicy(file, options), file);
}
