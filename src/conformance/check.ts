// The shape of a conformance check: one catalogue ID, the property it proves, the policy
// fields behind it, and either a comparison of the probe's observation with the Plan or a run
// of sandboxes of its own. A check states expected and observed values; it passes when they
// are equal, so every report shows both.
import type { Plan } from '../plan/types.js';
import type { Observation } from './observation.js';
import type { BuildRun, HostFacts, RunOptions, Subject } from './sandbox.js';

export type Outcome =
  | { expected: unknown; observed: unknown }
  /** The property does not apply to this policy (e.g. no pids limit to prove). */
  | { skip: string }
  /** This machine cannot run the check; never counted as a pass. */
  | { cannotRun: string };

export interface ProbeContext {
  plan: Plan;
  obs: Observation;
  host: HostFacts;
}

export interface SandboxContext {
  subject: Subject;
  run(plan: Plan, options?: Pick<RunOptions, 'keepFailed' | 'inspect'>): Promise<BuildRun>;
}

interface CheckBase {
  id: string;
  property: string;
  /** Policy fields (or runtime behaviour) the check proves. */
  proves: string[];
  /** For regression checks of known escapes: the attack in one line. */
  attack?: string;
}

export interface ProbeCheck extends CheckBase {
  kind: 'probe';
  evaluate(ctx: ProbeContext): Outcome;
}

export interface SandboxCheck extends CheckBase {
  kind: 'sandbox';
  run(ctx: SandboxContext): Promise<Outcome>;
}

export type Check = ProbeCheck | SandboxCheck;
