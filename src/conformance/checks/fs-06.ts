import { readFileSync, existsSync } from 'node:fs';
import { etcText } from '../../plan/describe.js';
import { isUnder } from '../../policy/semantics.js';
import type { ProbeCheck } from '../check.js';

export const check: ProbeCheck = {
  id: 'FS-06', kind: 'probe', property: '/etc holds exactly the generated files, byte for byte', proves: ['filesystem.etc', 'users.passwd', 'users.group_name'],
  evaluate: ({ plan, obs }) => {
    // The generated files' uid and gid are the ids taken from the pool; PRV-01 checks those are the pool's.
    const [uid] = obs.uid;
    const [gid] = obs.gid;
    const expected: Record<string, { content: string; mode: number }> = {};
    for (const file of plan.etc) {
      if (file.hostSource !== undefined) {
        if (!existsSync(file.hostSource)) continue;
        expected[file.path] = { content: readFileSync(file.hostSource, 'utf8'), mode: obs.etc[file.path]?.mode ?? -1 };
      } else {
        expected[file.path] = { content: etcText(file.content ?? [], { uid, gid }), mode: file.mode };
      }
    }
    // A host directory the policy binds under /etc (filesystem.paths: /etc/alternatives) holds the host's files, not generated ones.
    const bound = plan.mounts.filter((m) => m.type === 'bind' && m.role === 'path' && isUnder(m.target, '/etc')).map((m) => m.target);
    const observed = Object.fromEntries(Object.entries(obs.etc).filter(([path]) => !bound.some((dir) => isUnder(path, dir))));
    const sorted = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
    return { expected: sorted(expected), observed: sorted(observed) };
  },
};
