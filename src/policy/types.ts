// The policy as written (after `extends` is resolved) and the build spec: their types are
// generated from schemas/policy.schema.json and schemas/spec.schema.json at build time.
import type { StockadeBuildSpec, StockadePolicy } from './schema-types.generated.js';

export type { DeviceName, NetworkMode, RlimitValue, SeccompAction as SeccompActionName } from './schema-types.generated.js';
export type Policy = StockadePolicy;
export type BuildSpec = StockadeBuildSpec;
