// peakMemoryBytes is reported for a build whose policy sets no memory limit (guix-default): the
// build's cgroup accounts its memory, unlimited, wherever the host has a memory controller.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { IS_ROOT, NOT_ROOT_REASON, leftovers, makePolicy, removeSandbox, run } from './helpers.js';

/** Whether the kernel has the memory controller enabled (else there is nothing to account with). */
const HAS_MEMORY_CONTROLLER = readFileSync('/proc/cgroups', 'utf8').split('\n').some((l) => /^memory\s+\d+\s+\d+\s+1$/.test(l));

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else if (!HAS_MEMORY_CONTROLLER) {
  t.plan(0, 'this kernel has no memory cgroup controller: peakMemoryBytes is null without one');
} else {
  t.test('guix-default, no memory limit: peakMemoryBytes covers what the builder used', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    t.notMatch(readFileSync(sb.policy, 'utf8'), /memory/, 'the policy sets no memory limit');
    // dd reads 64 MiB at once into one buffer.
    const r = run(sb, 'dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null', ['--json']);
    t.equal(r.status, 0, r.stderr);
    const { peakMemoryBytes } = JSON.parse(r.stdout);
    t.ok(Number.isInteger(peakMemoryBytes) && peakMemoryBytes >= 64 * 1024 * 1024, `peakMemoryBytes ${peakMemoryBytes} ≥ 64 MiB`);
    t.same(leftovers(sb), [], 'its cgroup is removed with the rest');
  });
}
