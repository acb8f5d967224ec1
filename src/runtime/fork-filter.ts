// The fork filter: what keeps a forked child's memory whole. V8 marks every heap mapping it makes
// MADV_DONTFORK, and a forked child lacks each mapping so marked (it dies of SIGSEGV at its first
// touch). A process that forks inits loads forkableMemoryFilter once, before its first fork, and
// V8's marks stop taking effect; what V8 marked before is marked MADV_DOFORK again. The filter is
// inherited by every child, so every builder carries it (setup.ts loads it where a fresh-Node
// init does not have it yet).
import { readFileSync } from 'node:fs';
import { ERRNO, MADV_DOFORK } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { madvise } from '../ffi/libc.js';
import { compileSeccomp, loadSeccompPrivileged } from '../seccomp/compile.js';
import { forkableMemoryFilter } from '../seccomp/policy-filter.js';

let filterLoaded = false;
let forkable = false;

/** Whether this process has loaded the fork filter (a child forked from it carries it too). */
export function forkFilterLoaded(): boolean {
  return filterLoaded;
}

/**
 * Makes this process's memory whole in every child it forks, once, before its first fork: loads
 * forkableMemoryFilter (every thread), after which V8 marks nothing MADV_DONTFORK any more, then
 * marks MADV_DOFORK what it marked before, and checks that no such mapping is left (else it throws:
 * the caller then starts a fresh Node init instead).
 */
export function keepMemoryForkable(): void {
  if (forkable) return;
  if (!filterLoaded) {
    loadSeccompPrivileged(compileSeccomp(forkableMemoryFilter(), { otherArchitectures: 'allow', allThreads: true }));
    filterLoaded = true;
  }
  for (const { start, end } of dontForkMappings()) {
    try {
      madvise(start, end - start, MADV_DOFORK);
    } catch (err) {
      // ENOMEM: unmapped since smaps was read; nothing left to copy.
      if (!(err instanceof SyscallError && err.errno === ERRNO.ENOMEM)) throw err;
    }
  }
  const left = dontForkMappings();
  if (left.length) throw new Error(`${left.length} mappings still marked MADV_DONTFORK under the fork filter (first: 0x${left[0].start.toString(16)})`);
  forkable = true;
}

/** The mappings of this process marked MADV_DONTFORK: VmFlags in /proc/self/smaps hold `dc`. */
function dontForkMappings(): { start: number; end: number }[] {
  const found: { start: number; end: number }[] = [];
  let range = '';
  for (const line of readFileSync('/proc/self/smaps', 'latin1').split('\n')) {
    // A mapping's line ("start-end perms …") starts with a hex digit; its fields, VmFlags last, with a capital.
    if (/^[0-9a-f]/.test(line)) range = line.slice(0, line.indexOf(' '));
    else if (line.startsWith('VmFlags:') && line.split(' ').includes('dc')) {
      const [start, end] = range.split('-').map((hex) => parseInt(hex, 16));
      found.push({ start, end });
    }
  }
  return found;
}
