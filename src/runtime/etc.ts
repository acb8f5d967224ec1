// The generated /etc files, written into the new root with their exact planned content, through
// fds beneath the new root's fd (on its fresh tmpfs, before any bind: nothing else is there).
import { writeSync } from 'node:fs';
import { posix } from 'node:path';
import { OPEN_FLAGS } from '../ffi/arch.js';
import { close } from '../ffi/libc.js';
import { fchmod } from '../ffi/fsat.js';
import { makeDirsBeneath, openBeneath } from '../ffi/resolve.js';
import type { Plan } from '../plan/types.js';
import { etcText } from '../plan/describe.js';

export function writeEtcFiles(plan: Plan, rootFd: number, uid: number, gid: number): void {
  close(makeDirsBeneath(rootFd, 'etc', 0o755, undefined, '/etc'));
  for (const file of plan.etc) {
    if (file.content === undefined) continue;
    const relative = file.path.replace(/^\/+/, '');
    const parent = makeDirsBeneath(rootFd, posix.dirname(relative), 0o755, undefined, file.path);
    try {
      // O_TRUNC: a path listed twice gets its last content, as the Plan says.
      const fd = openBeneath(parent, posix.basename(relative), OPEN_FLAGS.O_WRONLY | OPEN_FLAGS.O_CREAT | OPEN_FLAGS.O_TRUNC, { mode: file.mode, label: file.path });
      try {
        writeSync(fd, etcText(file.content, { uid, gid }));
        fchmod(fd, file.mode);
      } finally {
        close(fd);
      }
    } finally {
      close(parent);
    }
  }
}
