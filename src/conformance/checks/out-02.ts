import { lstatSync, readlinkSync } from 'node:fs';
import type { SandboxCheck } from '../check.js';
import { probeOutputPlan } from '../sandbox.js';

type Seen = { kind: string; owner: string; mtime: number; mode?: string; target?: string };

/** What is installed at `path`, without following a symlink. */
function seen(path: string): Seen | 'absent' {
  if (!lstatExists(path)) return 'absent';
  const st = lstatSync(path);
  const kind = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'special';
  return {
    kind, owner: `${st.uid}:${st.gid}`, mtime: Math.floor(st.mtimeMs / 1000),
    ...(kind === 'symlink' ? { target: readlinkSync(path) } : { mode: (st.mode & 0o7777).toString(8) }),
  };
}

function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export const check: SandboxCheck = {
  id: 'OUT-02', kind: 'sandbox', property: 'the builder makes each output as a file, a directory or a symlink, handed over as such; a declared output it did not make fails the build, naming it',
  proves: ['outputs (hand-over)', 'build spec outputs'],
  run: async ({ subject, run }) => {
    const base = subject.plan.build.outputs[0];
    if (base === undefined) return { skip: 'the policy allows no outputs' };
    const o = subject.plan.outputs;
    const owner = `${o.owner.uid}:${o.owner.gid}`;
    // Siblings of the probe's output: the same outputs directory, so the same mounts and rules.
    const outs = { file: `${base}-file`, directory: `${base}-dir`, symlink: `${base}-link` };
    const kinds = probeOutputPlan(subject, `printf data > ${outs.file} && chmod 0755 ${outs.file} && mkdir ${outs.directory} && echo x > ${outs.directory}/f && ln -s /etc/shadow ${outs.symlink}`)!;
    kinds.build.outputs = Object.values(outs);
    const handedOver: Record<string, Seen | 'absent'> = {};
    const made = await run(kinds, { inspect: () => Object.entries(outs).forEach(([kind, path]) => (handedOver[kind] = seen(path))) });

    const missing = `${base}-never-made`;
    const partial = probeOutputPlan(subject, `echo x > ${outs.file}`)!;
    partial.build.outputs = [outs.file, missing];
    let installed: string[] = [];
    const forgot = await run(partial, { inspect: () => (installed = partial.build.outputs.filter(lstatExists)) });
    return {
      expected: {
        made: { outcome: 'succeeded', outputs: {
          file: { kind: 'file', owner, mtime: o.mtime, mode: o.executableMode.toString(8) },
          directory: { kind: 'directory', owner, mtime: o.mtime, mode: o.directoryMode.toString(8) },
          symlink: { kind: 'symlink', owner, mtime: o.mtime, target: '/etc/shadow' },
        } },
        missing: { outcome: 'failed', message: `builder for \`${partial.build.name}' failed to produce output path \`${missing}'`, installed: [] },
      },
      observed: {
        made: { outcome: made.result.outcome === 'succeeded' ? 'succeeded' : `${made.result.outcome}: ${made.result.message ?? made.stderr.trim()}`, outputs: handedOver },
        missing: { outcome: forgot.result.outcome, message: forgot.result.message, installed },
      },
    };
  },
};
