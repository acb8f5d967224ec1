// `npm test`'s last step: runs tap with the given arguments (package.json's tap config applies)
// and, after tap's own report, says once what was skipped and why: a count of skipped tests per
// reason, read back from each test file's raw TAP (`ok … # SKIP reason`, or a whole file's
// `1..0 # reason`), and the Debian packages scripts/test-deps.sh could not install. Exits as tap did.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const rawDir = mkdtempSync(join(tmpdir(), 'stockade-tap-'));

// Two test files at a time by default (each checks only what it made, so they may share the
// machine); STOCKADE_TEST_JOBS=1 runs them one after another, as CI does.
const jobs = process.env.STOCKADE_TEST_JOBS ?? '2';
if (!/^[1-9][0-9]?$/.test(jobs)) throw new Error(`STOCKADE_TEST_JOBS: ${jobs}: not a count of 1 to 99`);
const tap = spawn(join(root, 'node_modules/.bin/tap'), ['--output-dir', rawDir, `--jobs=${jobs}`, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
// The terminal's Ctrl-C reaches tap itself; this process waits for it to report and end.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => tap.kill('SIGTERM'));
const [code, signal] = await new Promise((resolve) => tap.on('exit', (...result) => resolve(result)));

try {
  const summary = skipSummary(rawDir);
  if (summary) process.stdout.write(`\n${summary}\n`);
} finally {
  rmSync(rawDir, { recursive: true, force: true });
}
process.exitCode = signal ? 128 + constants.signals[signal] : code;

function skipSummary(dir) {
  const byReason = new Map();
  for (const file of tapFiles(dir)) {
    const testFile = relative(dir, file).replace(/\.tap$/, '');
    for (const reason of skipReasons(readFileSync(file, 'utf8'))) {
      const entry = byReason.get(reason) ?? { tests: 0, files: new Set() };
      entry.tests++;
      entry.files.add(testFile);
      byReason.set(reason, entry);
    }
  }
  const lines = [];
  if (byReason.size > 0) {
    const entries = [...byReason].sort((a, b) => b[1].tests - a[1].tests);
    const total = entries.reduce((sum, [, e]) => sum + e.tests, 0);
    lines.push(`Skipped ${plural(total, 'test')}${process.getuid?.() === 0 ? '' : ' (not run as root)'}, by reason:`);
    const width = String(entries[0][1].tests).length;
    for (const [reason, e] of entries) {
      lines.push(`  ${String(e.tests).padStart(width)} in ${plural(e.files.size, 'file')}: ${reason}`);
    }
  }
  const missing = spawnSync('sh', [join(root, 'scripts/test-deps.sh'), '--missing'], { encoding: 'utf8' }).stdout?.trim();
  if (missing) lines.push(`Not installed (scripts/test-deps.sh installs them as root): ${missing}`);
  return lines.join('\n');
}

/** Every skip in one file's raw TAP: a directive on a test point, or a file that plans no tests. */
function skipReasons(text) {
  const reasons = [];
  for (const line of text.split('\n')) {
    // `#` in a test's name is escaped as `\#`; the first bare one starts the directive.
    const point = /^\s*(?:not )?ok\b(?:[^#\\]|\\.)*#\s*skip\S*\s*(.*)$/i.exec(line);
    // Only the file's own plan (not indented): a subtest planning none is also an `ok … # SKIP`.
    const plan = /^1\.\.0\s*(?:#\s*(.*))?$/.exec(line);
    const match = point ?? plan;
    if (match) reasons.push(match[1]?.trim().replace(/\\([\\#])/g, '$1') || 'no reason given');
  }
  return reasons;
}

function tapFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? tapFiles(path) : entry.name.endsWith('.tap') ? [path] : [];
  });
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
