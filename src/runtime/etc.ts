// The generated /etc files, written into the new root with their exact planned content.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Plan } from '../plan/types.js';
import { substituteIds } from './request.js';

export function writeEtcFiles(plan: Plan, root: string, uid: number, gid: number): void {
  mkdirSync(join(root, 'etc'), { recursive: true, mode: 0o755 });
  for (const file of plan.etc) {
    if (file.content === undefined) continue;
    const path = join(root, file.path);
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    writeFileSync(path, substituteIds(file.content, uid, gid));
    chmodSync(path, file.mode);
  }
}
