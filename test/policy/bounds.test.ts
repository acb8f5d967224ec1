// Every file the loader is pointed at (a policy, its bases, a seccomp profile, a build spec) is
// read only if it is a regular file of at most 1 MiB: a device, a FIFO or a huge file is refused
// at once, with the file and the limit named, instead of exhausting memory or time.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicy } from '../../src/policy/load.js';
import { formatDiagnostic, PolicyError } from '../../src/policy/errors.js';
import { loadSpecFile } from '../../src/plan/spec.js';

const dir = mkdtempSync(join(tmpdir(), 'stockade-bounds-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const MIB = 1024 * 1024;
const LIMIT = 'larger than the limit of 1 MiB (1048576 bytes)';

function failure(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof PolicyError) return err.diagnostics.map(formatDiagnostic);
    throw err;
  }
  throw new Error('loaded, expected a PolicyError');
}

/** A valid policy padded with a comment to exactly `size` bytes. */
function paddedPolicy(file: string, size: number): string {
  const head = 'stockade: 1\nname: big\n#';
  writeFileSync(file, head + 'x'.repeat(size - head.length - 1) + '\n');
  return file;
}

const child = (name: string, base: string) => {
  const file = join(dir, name);
  writeFileSync(file, `stockade: 1\nname: child\nextends: ${base}\n`);
  return file;
};

t.test('extends: /dev/zero is a positioned error, not an endless read', async (t) => {
  const file = child('zero.yaml', '/dev/zero');
  t.strictSame(failure(() => loadPolicy(file)), [`${file}:3:10: extends: cannot read policy /dev/zero: not a regular file (a character device)`]);
});

t.test('extends: a FIFO or a directory is refused without waiting for a writer', async (t) => {
  const fifo = join(dir, 'fifo.yaml');
  execFileSync('mkfifo', [fifo]);
  const file = child('fifo-child.yaml', fifo);
  t.strictSame(failure(() => loadPolicy(file)), [`${file}:3:10: extends: cannot read policy ${fifo}: not a regular file (a FIFO)`]);
  const directory = child('dir-child.yaml', `${dir}/`);
  t.strictSame(failure(() => loadPolicy(directory)), [`${directory}:3:10: extends: cannot read policy ${dir}/: not a regular file (a directory)`]);
});

t.test('a policy or a base over 1 MiB is refused, naming the file and the limit; 1 MiB exactly loads', async (t) => {
  const exact = paddedPolicy(join(dir, 'exact.yaml'), MIB);
  t.equal(loadPolicy(exact).policy.name, 'big');
  const big = paddedPolicy(join(dir, 'big.yaml'), MIB + 1);
  t.strictSame(failure(() => loadPolicy(big)), [`${big}:1:1: cannot read policy: ${LIMIT}`]);
  const file = child('big-child.yaml', big);
  t.strictSame(failure(() => loadPolicy(file)), [`${file}:3:10: extends: cannot read policy ${big}: ${LIMIT}`]);
  // A sparse 200 MB file is refused from its size alone, before any of it is read.
  const huge = join(dir, 'huge.yaml');
  writeFileSync(huge, '');
  truncateSync(huge, 200 * 1000 * 1000);
  t.strictSame(failure(() => loadPolicy(huge)), [`${huge}:1:1: cannot read policy: ${LIMIT}`]);
});

t.test('seccomp.profile: only a regular file of at most 1 MiB', async (t) => {
  const file = join(dir, 'profile.yaml');
  writeFileSync(file, 'stockade: 1\nname: p\nseccomp:\n  profile: /dev/zero\n');
  t.strictSame(failure(() => loadPolicy(file)), [`${file}:4:12: seccomp.profile: cannot read /dev/zero: not a regular file (a character device)`]);
  const profile = join(dir, 'big.json');
  writeFileSync(profile, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}${' '.repeat(MIB)}`);
  writeFileSync(file, `stockade: 1\nname: p\nseccomp:\n  profile: ${profile}\n`);
  t.strictSame(failure(() => loadPolicy(file)), [`${file}:4:12: seccomp.profile: cannot read ${profile}: ${LIMIT}`]);
});

t.test('build spec files: only a regular file of at most 1 MiB', async (t) => {
  t.strictSame(failure(() => loadSpecFile('/dev/zero')), ['/dev/zero:1:1: cannot read build spec: not a regular file (a character device)']);
  const spec = join(dir, 'spec.yaml');
  writeFileSync(spec, `name: hello\nbuilder: /bin/sh\n#${'x'.repeat(MIB)}\n`);
  t.strictSame(failure(() => loadSpecFile(spec)), [`${spec}:1:1: cannot read build spec: ${LIMIT}`]);
});
