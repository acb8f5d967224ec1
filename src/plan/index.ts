// The core's entry points: a policy file (and a build spec) to a Plan.
import { nativeSeccompArch } from '../ffi/arch.js';
import { loadPolicy, type LoadOptions } from '../policy/load.js';
import type { BuildSpec } from '../policy/types.js';
import { DEFAULTS } from './defaults.js';
import { plan } from './plan.js';
import type { Plan } from './types.js';

export { plan, type PlanContext } from './plan.js';
export type { Plan } from './types.js';

export interface PlanFromFileOptions extends LoadOptions {
  spec?: BuildSpec;
  specSource?: string;
  callerEnv?: Record<string, string | undefined>;
}

/** Loads and validates a policy file, then plans a build (the example build when no spec is given) for this host. */
export function planFromFile(file: string, options: PlanFromFileOptions = {}): Plan {
  const loaded = loadPolicy(file, options);
  const spec = options.spec ?? { ...DEFAULTS.exampleSpec, args: [], env: {}, inputs: [], outputs: [] };
  return plan(loaded, spec, { callerEnv: options.callerEnv, specSource: options.specSource, nativeArch: nativeSeccompArch() });
}
