import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../plan/types.js';
import type { SandboxCheck } from '../check.js';
import { probeOutputPlan } from '../sandbox.js';

/** A builder's output: plain, executable, private and setuid files, a private directory, a symlink. */
const LEAVE = [
  'mkdir "$OUT"',
  'echo data > "$OUT/plain"; chmod 0600 "$OUT/plain"',
  'printf "#!/bin/sh\\n" > "$OUT/tool"; chmod 0700 "$OUT/tool"',
  'mkdir -m 0700 "$OUT/private"; echo x > "$OUT/private/file"',
  'echo x > "$OUT/suid"; chmod 06755 "$OUT/suid" || chmod 0755 "$OUT/suid"',
  'ln -s plain "$OUT/link"',
].join('; ');

type Entry = { owner: string; mode?: string; mtime: number };

/** Every entry under `root`, as the Plan says it must be handed back. */
function expectedTree(observed: Record<string, { kind: string }>, plan: Plan): Record<string, Entry> {
  const o = plan.outputs;
  const executable = new Set(['tool', 'suid']);
  return Object.fromEntries(Object.entries(observed).map(([path, { kind }]) => {
    const mode = kind === 'directory' ? o.directoryMode : kind === 'file' ? (executable.has(path) ? o.executableMode : o.fileMode) : undefined;
    return [path, { owner: `${o.owner.uid}:${o.owner.gid}`, ...(mode !== undefined && { mode: mode.toString(8) }), mtime: o.mtime }];
  }));
}

function walk(root: string, rel = ''): Record<string, { kind: string; entry: Entry }> {
  const out: Record<string, { kind: string; entry: Entry }> = {};
  const st = lstatSync(join(root, rel));
  const kind = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'special';
  out[rel || '.'] = { kind, entry: { owner: `${st.uid}:${st.gid}`, ...(kind !== 'symlink' && { mode: (st.mode & 0o7777).toString(8) }), mtime: Math.floor(st.mtimeMs / 1000) } };
  if (kind === 'directory') for (const name of readdirSync(join(root, rel)).sort()) Object.assign(out, walk(root, rel ? `${rel}/${name}` : name));
  return out;
}

export const check: SandboxCheck = {
  id: 'OUT-01', kind: 'sandbox', property: 'outputs are handed back with the planned owner, modes and mtime, and no setuid, setgid or write bits',
  proves: ['outputs.owner', 'outputs (hand-over)'],
  run: async ({ subject, run }) => {
    const plan = probeOutputPlan(subject, `OUT=${subject.plan.build.outputs[0]}; ${LEAVE}`);
    if (!plan) return { skip: 'the policy allows no outputs' };
    let tree: Record<string, { kind: string; entry: Entry }> = {};
    const build = await run(plan, { inspect: (done) => void (done.result.outcome === 'succeeded' && (tree = walk(plan.build.outputs[0]))) });
    const observed = Object.fromEntries(Object.entries(tree).map(([path, { entry }]) => [path, entry]));
    return {
      expected: { outcome: 'succeeded', entries: ['.', 'link', 'plain', 'private', 'private/file', 'suid', 'tool'], tree: expectedTree(tree, plan) },
      observed: { outcome: build.result.outcome === 'succeeded' ? 'succeeded' : `${build.result.outcome}: ${build.result.message ?? build.stderr.trim()}`, entries: Object.keys(tree).sort(), tree: observed },
    };
  },
};
