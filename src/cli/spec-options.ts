// The build-spec options shared by `run` and `build`: a spec file plus command-line additions.
import { UsageError } from './args.js';
import type { BuildSpec } from '../policy/types.js';

export const SPEC_OPTIONS = {
  spec: { type: 'string' }, name: { type: 'string' },
  input: { type: 'string', multiple: true }, output: { type: 'string', multiple: true },
  env: { type: 'string', multiple: true }, cores: { type: 'string' },
} as const;

export const SPEC_HELP = `  --spec SPEC         build spec file (YAML/JSON); the options below add to it
  --name NAME         build name (default: the builder's file name)
  --input PATH        host path bound read-only at the same path (repeatable)
  --output PATH       host output directory, handed over canonicalised if the build succeeds (repeatable)
  --env K=V           extra environment variable, if the policy allows it (repeatable);
                      PATH is /path-not-set, as under guix, unless the spec or --env sets it
  --cores N           NIX_BUILD_CORES (default 0, which means "all cores" as under guix)`;

export interface SpecValues {
  spec?: string;
  name?: string;
  input?: string[];
  output?: string[];
  env?: string[];
  cores?: string;
}

/** The spec a command line describes; `command` names the command in usage errors. */
export async function specFromOptions(command: string, v: SpecValues, builderArgv: string[]): Promise<BuildSpec> {
  const { positionsOf, withPositions } = await import('../plan/spec-check.js');
  // The spec file's parser only when there is one: `run` plans a cached policy without it.
  const base: Partial<BuildSpec> = v.spec ? (await import('../plan/spec.js')).loadSpecFile(v.spec) : {};
  const [builder, ...builderArgs] = builderArgv.length ? builderArgv : [base.builder, ...(base.args ?? [])];
  if (!builder) throw new UsageError(`${command} needs a builder: -- BUILDER [ARG…] or a spec with builder`);
  const env: Record<string, string> = { ...base.env };
  for (const pair of v.env ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env needs K=V, got '${pair}'`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (v.cores !== undefined && !/^\d+$/.test(v.cores)) throw new UsageError(`--cores needs a whole number, got '${v.cores}'`);
  const spec: BuildSpec = {
    name: v.name ?? base.name ?? builder.split('/').pop()!,
    builder,
    args: builderArgs as string[],
    env,
    inputs: [...(base.inputs ?? []), ...(v.input ?? [])],
    outputs: [...(base.outputs ?? []), ...(v.output ?? [])],
    cores: v.cores !== undefined ? Number(v.cores) : base.cores ?? 0,
  };
  if (!v.spec) return spec;
  // A field the command line set or added is named by the command line, the rest by the file.
  const file = positionsOf(base as BuildSpec);
  const fromFile = (pointer: string): boolean => {
    const [, field, key] = pointer.split('/');
    if (field === 'inputs') return key === undefined || Number(key) < (base.inputs?.length ?? 0);
    if (field === 'outputs') return key === undefined || Number(key) < (base.outputs?.length ?? 0);
    if (field === 'builder' || field === 'args') return builderArgv.length === 0;
    if (field === 'name') return v.name === undefined;
    if (field === 'cores') return v.cores === undefined;
    if (field === 'env') return !(v.env ?? []).some((pair) => pair.slice(0, pair.indexOf('=')) === key);
    return false;
  };
  return withPositions(spec, (pointer) => (fromFile(pointer) ? file?.(pointer) : undefined));
}
