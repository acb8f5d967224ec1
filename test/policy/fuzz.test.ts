// Fuzzing the loader and planner with mutated shipped policies and random YAML-ish text. Whatever
// the input: no crash (only PolicyError), no hang, every failure positioned inside the file it
// names, and every policy that loads produces a Plan. Deterministic by default; to explore,
//   STOCKADE_FUZZ_SEED=1234 npx tap test/policy/fuzz.test.ts
// and a failure prints the seed, the case number and the text that broke it.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyError } from '../../src/policy/errors.js';
import { planFromFile } from '../../src/plan/index.js';
import { SHIPPED_POLICIES_DIR } from '../../src/policy/load.js';

const SEED = Number(process.env.STOCKADE_FUZZ_SEED ?? 0x5eed);
const MUTATIONS = 3000;
const RANDOM_TEXTS = 1000;
t.comment(`fuzz seed ${SEED} (set STOCKADE_FUZZ_SEED to change it)`);

/** mulberry32: small, fast, and the same sequence on every platform for a seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(SEED);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(list: readonly T[]): T => list[int(list.length)];

const SHIPPED = ['guix-default', 'fixed-output', 'strict'].map((name) => readFileSync(join(SHIPPED_POLICIES_DIR, `${name}.yaml`), 'utf8'));
const SCALARS = ['1', '0', '-1', 'true', 'false', 'null', '~', '[]', '{}', '""', '"x"', 'yes', '1.5', '1e999', '.nan', '0x10', '0o777', '/', '..', 'none', 'slirp', '{name}', '"{cores}"', '&a x', '*a', '!!str 1', '!append [x]', '!!binary AA==', 'CAP_SYS_ADMIN', 'unlimited', '"\\u0000"', "'a''b'", '|\n  block', '>-\n  folded'];
const CHARS = [...':-[]{},#&*!|>\'"%@`?~ \t\n\r\\/0aZ_.', '\u00e9', '\ufeff', '\u0000'];

const MUTATORS: ((lines: string[]) => void)[] = [
  (lines) => void lines.splice(int(lines.length), 1), // delete a line
  (lines) => {
    const i = int(lines.length);
    lines.splice(i, 0, lines[i] ?? ''); // duplicate a line
  },
  (lines) => {
    const i = int(lines.length);
    const j = int(lines.length);
    [lines[i], lines[j]] = [lines[j], lines[i]]; // swap two lines
  },
  (lines) => {
    const i = int(lines.length);
    const line = lines[i] ?? '';
    const at = int(line.length + 1);
    lines[i] = line.slice(0, at) + pick(CHARS) + line.slice(at + 1); // replace or add a character
  },
  (lines) => {
    const i = int(lines.length);
    lines[i] = random() < 0.5 ? ' '.repeat(1 + int(3)) + lines[i] : (lines[i] ?? '').replace(/^ {1,2}/, ''); // re-indent
  },
  (lines) => {
    const i = int(lines.length);
    lines[i] = (lines[i] ?? '').replace(/(:\s+|-\s+|\[|,\s*)([^\s,\]}#][^,\]}#]*)/, (_, lead: string) => lead + pick(SCALARS)); // retype a scalar
  },
  (lines) => {
    const text = lines.join('\n');
    lines.splice(0, lines.length, ...text.slice(0, int(text.length + 1)).split('\n')); // truncate
  },
];

function mutate(text: string): string {
  const lines = text.split('\n');
  for (let n = 1 + int(3); n > 0; n--) pick(MUTATORS)(lines);
  return lines.join('\n');
}

const WORDS = ['stockade', 'name', 'extends', 'users', 'group', 'range', 'filesystem', 'paths', 'source', 'target', 'devices', 'network', 'mode', 'seccomp', 'deny', 'rules', 'syscall', 'action', 'args', 'landlock', 'limits', 'rlimits', 'environment', 'set', 'pass', 'etc', 'files', 'hosts', 'build_dir', 'guix-default', 'x', '/etc/passwd', '/tmp', '{name}'];
function randomText(): string {
  let out = random() < 0.5 ? 'stockade: 1\nname: fuzz\n' : '';
  for (let n = int(40); n > 0; n--) {
    const r = random();
    out += r < 0.45 ? pick(WORDS) : r < 0.7 ? pick(CHARS) : r < 0.85 ? pick(SCALARS) : r < 0.95 ? ': ' : '\n' + ' '.repeat(int(6));
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'stockade-fuzz-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const POLICY = join(dir, 'policy.yaml');
// A mutated base, shadowing the shipped guix-default for the policies extending it.
const BASE = join(dir, 'guix-default.yaml');

interface Outcome {
  planned: number;
  refused: number;
  problems: string[];
}

/** Loads and plans one case: whether it planned, and what is wrong with the outcome, if anything. */
function check(files: Map<string, string>): { planned: boolean; problem?: string } {
  const lineCounts = new Map([...files].map(([file, text]) => [file, text.split('\n').length]));
  try {
    const plan = planFromFile(POLICY);
    const ok = plan.version === 1 && plan.policy.file === POLICY && plan.build.name === 'example' && JSON.stringify(plan).length > 0;
    return { planned: true, problem: ok ? undefined : 'a Plan that is not one' };
  } catch (err) {
    if (!(err instanceof PolicyError)) return { planned: false, problem: `threw ${err instanceof Error ? err.stack : String(err)}` };
    if (err.diagnostics.length === 0) return { planned: false, problem: 'a PolicyError without diagnostics' };
    for (const d of err.diagnostics) {
      // The shipped guix-default is read when no mutated base shadows it; it has no errors to place.
      const lines = lineCounts.get(d.file);
      if (lines === undefined) return { planned: false, problem: `diagnostic names an unexpected file: ${JSON.stringify(d)}` };
      if (!Number.isInteger(d.line) || !Number.isInteger(d.col) || d.line < 1 || d.col < 1 || d.line > lines + 1) {
        return { planned: false, problem: `diagnostic outside its file (${lines} lines): ${JSON.stringify(d)}` };
      }
      if (d.message === '' || /\n\s+at /.test(d.message)) return { planned: false, problem: `bad message: ${JSON.stringify(d)}` };
    }
    return { planned: false };
  }
}

const slowest = { ms: 0, label: '' };

function run(label: string, count: number, make: () => Map<string, string>, outcome: Outcome): void {
  for (let i = 0; i < count; i++) {
    const files = make();
    for (const [file, text] of files) writeFileSync(file, text);
    const before = performance.now();
    const { planned, problem } = check(files);
    const ms = performance.now() - before;
    if (ms > slowest.ms) Object.assign(slowest, { ms, label: `${label} #${i}` });
    if (planned) outcome.planned++;
    else outcome.refused++;
    if (problem) outcome.problems.push(`${label} #${i} (seed ${SEED}): ${problem}\n${[...files].map(([f, text]) => `--- ${f}\n${text}`).join('\n')}`);
    if (files.has(BASE)) unlinkSync(BASE);
  }
}

t.test(`${MUTATIONS} mutations of the shipped policies, ${RANDOM_TEXTS} random texts`, async (t) => {
  // CPU time, not wall time: what a pathological input costs, whatever else the machine runs.
  const started = process.cpuUsage();
  const mutated: Outcome = { planned: 0, refused: 0, problems: [] };
  run('mutation', MUTATIONS, () => {
    const files = new Map([[POLICY, mutate(pick(SHIPPED))]]);
    // Now and then break the base instead, so errors are also found in the file extended.
    if (random() < 0.25) files.set(BASE, mutate(SHIPPED[0]));
    return files;
  }, mutated);
  const texts: Outcome = { planned: 0, refused: 0, problems: [] };
  run('random text', RANDOM_TEXTS, () => new Map([[POLICY, randomText()]]), texts);
  const used = process.cpuUsage(started);
  const seconds = (used.user + used.system) / 1e6;
  t.comment(`mutations: ${mutated.planned} planned, ${mutated.refused} refused; random texts: ${texts.planned} planned, ${texts.refused} refused; ${seconds.toFixed(1)} s of CPU, slowest case ${slowest.ms.toFixed(0)} ms (${slowest.label})`);

  t.strictSame([...mutated.problems, ...texts.problems].slice(0, 5), [], 'every case a Plan or positioned PolicyError');
  // The mix must exercise both outcomes, or the mutators have stopped doing their job.
  t.ok(mutated.planned > MUTATIONS / 20 && mutated.refused > MUTATIONS / 5, 'mutations both plan and fail');
  t.ok(texts.refused > RANDOM_TEXTS / 2, 'random texts mostly fail');
  t.ok(seconds < 20, `${seconds.toFixed(1)} s of CPU for all cases (< 20 s)`);
  t.ok(slowest.ms < 2000, `no case takes two seconds (slowest: ${slowest.label})`);
});
