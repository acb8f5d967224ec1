// Audit vocabulary: rules are data (ID, severity, explanation, check), findings point at
// the YAML node that causes them.
import type { LoadedPolicy } from '../policy/load.js';
import type { Policy } from '../policy/types.js';
import type { Plan } from '../plan/types.js';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const CONCERNS = [
  'filesystem', 'devices', 'identity', 'capabilities', 'network',
  'seccomp', 'landlock', 'limits', 'environment', 'timeouts',
] as const;
export type Concern = (typeof CONCERNS)[number];

/** What a rule looks at: the Plan (what will run) and the policy with its positions. */
export interface AuditInput {
  plan: Plan;
  policy: Policy;
  loaded: LoadedPolicy;
}

/** One place where a rule applies. */
export interface Hit {
  /** JSON pointer into the merged policy of the node that causes it. */
  pointer: string;
  message: string;
  /** 0..1: how much of the rule's weight this hit counts (a rule scores its worst hit). */
  badness?: number;
}

export interface Rule {
  id: string;
  concern: Concern;
  severity: Severity;
  /** One line: what the rule finds. */
  title: string;
  /** Why it matters. */
  why: string;
  /** How to fix it. */
  fix: string;
  check(input: AuditInput): Hit[];
}

/** A rule joined with its weight from the exposure table. */
export interface RegisteredRule extends Rule {
  weight: number;
}

export interface Finding {
  ruleId: string;
  concern: Concern;
  severity: Severity;
  message: string;
  pointer: string;
  file: string;
  line: number;
  col: number;
  /** The setting is left out of every file of the chain: the finding is about its default. */
  isDefault: boolean;
  /** Points this finding adds to the score (its rule's weight × badness; 0 when a worse hit of the same rule counts). */
  points: number;
}

export interface AuditReport {
  file: string;
  policyName: string;
  chain: string[];
  score: number;
  level: string;
  findings: Finding[];
}

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}
