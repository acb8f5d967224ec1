import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isUnder } from '../../policy/semantics.js';
import type { SandboxCheck } from '../check.js';
import type { BuildRun } from '../sandbox.js';

const REFUSED = 'refused before the builder ran, naming the symlink';

function verdict(run: BuildRun): string {
  if (run.stdout.includes('ran')) return `the builder ran (${run.result.outcome})`;
  return /is a symlink/.test(run.result.message ?? '') ? REFUSED : `${run.result.outcome}: ${run.result.message ?? ''}`;
}

export const check: SandboxCheck = {
  id: 'FS-12', kind: 'sandbox',
  property: 'no input or output path passes a symlink: a link to / left in the store redirects neither an input bind nor the hand-over',
  attack: 'a symlink in the middle of an output or input path, left by an earlier build, makes the root-run hand-over write anywhere on the host or an input bind expose any file (Stockade, 2026)',
  proves: ['filesystem.inputs.under', 'filesystem.outputs.under', 'outputs (hand-over)'],
  run: async ({ subject, run }) => {
    const { inputsUnder, outputsUnder } = subject.plan.build;
    // A prefix for both, as the shipped policies' /gnu/store: one build's output is a later one's input.
    const root = outputsUnder.find((o) => inputsUnder.some((i) => isUnder(o, i)));
    if (!root) return { skip: 'no prefix allows both inputs and outputs' };
    const token = randomBytes(6).toString('hex');
    const made = existsSync(root) ? undefined : mkdirSync(root, { recursive: true, mode: 0o755 });
    const dir = join(root, `stockade-conformance-fs12-${token}`);
    const victim = `/tmp/stockade-conformance-fs12-${token}`;
    try {
      // What an earlier build's hand-over installs: outputs keep their symlinks.
      mkdirSync(dir, { mode: 0o755 });
      symlinkSync('/', join(dir, 'up'));
      const output = await run(subject.replan(`echo ran; echo pwned > ${join(dir, 'up', victim)}`, { outputs: [join(dir, 'up', victim)] }));
      const input = await run(subject.replan('echo ran', { inputs: [join(dir, 'up', 'etc')] }));
      return {
        expected: { output: REFUSED, input: REFUSED, [victim]: 'absent' },
        observed: { output: verdict(output), input: verdict(input), [victim]: existsSync(victim) ? 'created on the host' : 'absent' },
      };
    } finally {
      rmSync(victim, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
      if (made) rmSync(made, { recursive: true, force: true });
    }
  },
};
