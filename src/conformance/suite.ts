// Runs the catalogue against policies: one probe sandbox per policy for the probe checks, and
// the sandbox checks' own builds; results stream out as they come.
import { isDeepStrictEqual } from 'node:util';
import type { Check, Outcome } from './check.js';
import { CATALOGUE } from './catalogue.js';
import { observeThroughRunner } from './runner.js';
import { observe, prepareSubject, runSandbox, type SubjectOptions } from './sandbox.js';
import type { Observation } from './observation.js';

export type Status = 'pass' | 'fail' | 'skip' | 'cannot-run';

export interface CheckResult {
  policy: string;
  id: string;
  property: string;
  status: Status;
  expected?: unknown;
  observed?: unknown;
  /** Why a check was skipped, could not run, or failed without an observation. */
  reason?: string;
}

export interface PolicyReport {
  policy: string;
  file: string;
  notes: string[];
}

export interface SuiteOptions extends SubjectOptions {
  checks?: readonly Check[];
  /** Runs the probe as a remote action of `stockade runner` (runner.ts); the checks that start builds of their own are skipped. */
  viaRunner?: boolean;
  /** Stops the run: the build in flight is killed and everything is cleaned up. */
  signal?: AbortSignal;
  onPolicy?(report: PolicyReport): void;
  onResult?(result: CheckResult): void;
}

/** pass when expected and observed are equal; skips and machine limits pass through. */
export function judge(policy: string, check: Check, outcome: Outcome): CheckResult {
  const base = { policy, id: check.id, property: check.property };
  if ('skip' in outcome) return { ...base, status: 'skip', reason: outcome.skip };
  if ('cannotRun' in outcome) return { ...base, status: 'cannot-run', reason: outcome.cannotRun };
  return { ...base, status: isDeepStrictEqual(outcome.expected, outcome.observed) ? 'pass' : 'fail', expected: outcome.expected, observed: outcome.observed };
}

function failed(policy: string, check: Check, err: unknown): CheckResult {
  return { policy, id: check.id, property: check.property, status: 'fail', reason: err instanceof Error ? err.message : String(err) };
}

export async function runSuite(files: string[], options: SuiteOptions = {}): Promise<{ results: CheckResult[]; policies: PolicyReport[] }> {
  const checks = options.checks ?? CATALOGUE;
  const results: CheckResult[] = [];
  const policies: PolicyReport[] = [];
  const emit = (r: CheckResult) => {
    results.push(r);
    options.onResult?.(r);
  };
  const isRoot = process.getuid?.() === 0;
  for (const file of files) {
    if (options.signal?.aborted) break;
    if (!isRoot) {
      for (const check of checks) emit({ policy: file, id: check.id, property: check.property, status: 'cannot-run', reason: 'needs root (sandboxes are built as guix-daemon builds them)' });
      continue;
    }
    const subject = await prepareSubject(file, options);
    try {
      const report = { policy: subject.name, file, notes: subject.notes };
      policies.push(report);
      options.onPolicy?.(report);
      if (subject.cannotRun) {
        for (const check of checks) emit({ policy: subject.name, id: check.id, property: check.property, status: 'cannot-run', reason: subject.cannotRun });
        continue;
      }
      let observation: Observation | Error | undefined;
      // Through the runner, the Plan the runner made for the probe's action is what is promised.
      let plan = subject.plan;
      for (const check of checks) {
        if (options.signal?.aborted) break;
        try {
          if (check.kind === 'probe') {
            observation ??= await (options.viaRunner
              ? observeThroughRunner(subject, file, options).then((seen) => ((plan = seen.plan), seen.observation))
              : observe(subject, options.signal)
            ).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
            if (observation instanceof Error) throw observation;
            emit(judge(subject.name, check, check.evaluate({ plan, obs: observation, host: subject.host })));
          } else if (options.viaRunner) {
            emit({ policy: subject.name, id: check.id, property: check.property, status: 'skip', reason: 'through the runner only the probe checks run (this one starts builds of its own)' });
          } else {
            emit(judge(subject.name, check, await check.run({ subject, run: (plan, runOptions) => runSandbox(plan, { ...runOptions, signal: options.signal }) })));
          }
        } catch (err) {
          emit(failed(subject.name, check, err));
        }
      }
    } finally {
      await subject.dispose();
    }
  }
  return { results, policies };
}

/** 0 all passed (skips allowed), 1 a failure, 77 a check this machine could not run. */
export function exitStatus(results: readonly CheckResult[]): number {
  if (results.some((r) => r.status === 'fail')) return 1;
  if (results.some((r) => r.status === 'cannot-run')) return 77;
  return 0;
}
