// The hand-over runs in the daemon's process, next to other builds: while it copies a large
// output, other work gets turns of the event loop (it yields every so many entries and bytes).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS } from '../../src/plan/defaults.js';
import { handOver } from '../../src/runtime/outputs.js';
import { openRoot } from '../../src/ffi/resolve.js';
import { close } from '../../src/ffi/libc.js';
import { IS_ROOT, NOT_ROOT_REASON } from '../runtime/helpers.js';

/** No account needed: the tree only needs an owner that is not root. */
const BUILD_UID = 2_100_000_000 + randomBytes(2).readUInt16BE(0);

/** Counts the turns other work gets while `work` runs. */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ turns: number; value: T }> {
  let turns = 0;
  let running = true;
  const other = () => {
    if (!running) return;
    turns++;
    setImmediate(other);
  };
  setImmediate(other);
  const value = await work();
  running = false;
  return { turns, value };
}

function owned(path: string): void {
  chownSync(path, BUILD_UID, BUILD_UID);
}

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('other work runs while many files are handed over, and while one large file is', async (t) => {
    const work = mkdtempSync(join(tmpdir(), 'stk-async-handover-'));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const workFd = openRoot(work);
    t.teardown(() => close(workFd));
    const within = { outputsUnder: [work] };

    const many = join(work, 'many');
    mkdirSync(many);
    owned(many);
    for (let d = 0; d < 20; d++) {
      const dir = join(many, `d${d}`);
      mkdirSync(dir);
      owned(dir);
      for (let f = 0; f < 100; f++) {
        writeFileSync(join(dir, `f${f}`), `${d}/${f}\n`);
        owned(join(dir, `f${f}`));
      }
    }
    const tree = await turnsDuring(() => handOver([join(work, 'many-out')], { dirFd: workFd, from: [{ dir: '', name: 'many' }] }, BUILD_UID, DEFAULTS.outputs, within));
    t.equal(tree.value.outputs[0].files, 2_000, 'every file handed over');
    t.equal(readFileSync(join(work, 'many-out', 'd19', 'f99'), 'utf8'), '19/99\n');
    t.ok(tree.turns >= 7, `other work got ${tree.turns} turns during 2,020 entries (one per 256 at least)`);

    const large = join(work, 'large');
    mkdirSync(large);
    owned(large);
    const content = randomBytes(40 << 20);
    writeFileSync(join(large, 'blob'), content);
    owned(join(large, 'blob'));
    const file = await turnsDuring(() => handOver([join(work, 'large-out')], { dirFd: workFd, from: [{ dir: '', name: 'large' }] }, BUILD_UID, DEFAULTS.outputs, within));
    t.ok(readFileSync(join(work, 'large-out', 'blob')).equals(content), 'the large file is copied whole');
    t.ok(file.turns >= 2, `other work got ${file.turns} turns during one 40 MiB file (one per 16 MiB at least)`);
  });
}
