#!/usr/bin/env node
// Cost of a seccomp filter on a syscall-heavy process: `dd bs=1` (two syscalls per byte) run
// under the filter vs the same without, alternating, median of several runs. dd's own timing
// line is used, so Node's start-up is not part of the figure.
//
//   node bench/seccomp.mjs [PLAN.json | POLICY.yaml]… [--runs N] [--count BYTES]
//
// Without an argument it measures a deny-list like the strict policy's. A .json file is a
// SeccompPlan; anything else is a policy, planned through dist/plan/index.js (one without a
// seccomp filter is named and skipped).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const dist = new URL('../dist/', import.meta.url);

/** Child mode: load the filter (if any) into this thread, then become dd. */
async function execUnder(planFile, command) {
  const libc = await import(new URL('ffi/libc.js', dist));
  if (planFile !== 'none') {
    const { compileSeccomp, loadSeccomp } = await import(new URL('seccomp/compile.js', dist));
    loadSeccomp(compileSeccomp(JSON.parse(readFileSync(planFile, 'utf8'))));
  }
  for (const fd of [0, 1, 2]) libc.clearCloexec(fd);
  libc.execve(command[0], command, process.env);
}

const EPERM = { kind: 'errno', errno: 1, name: 'EPERM' };

/** What the strict policy denies: namespaces, mounts, keyrings, bpf, userfaultfd, io_uring, perf, ptrace, kexec, modules, setuid chmods. */
function strictLikePlan() {
  const denied = [
    'unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'move_mount', 'open_tree', 'fsopen', 'fsconfig',
    'fsmount', 'fspick', 'mount_setattr', 'keyctl', 'add_key', 'request_key', 'bpf', 'userfaultfd',
    'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'perf_event_open', 'ptrace',
    'process_vm_readv', 'process_vm_writev', 'kexec_load', 'kexec_file_load', 'init_module',
    'finit_module', 'delete_module',
  ];
  const rules = denied.map((syscall) => ({ syscall, action: EPERM, args: [], optional: false }));
  for (const [syscall, index] of [['chmod', 1], ['fchmod', 1], ['fchmodat', 2], ['fchmodat2', 2]]) {
    for (const bit of [0o4000, 0o2000]) {
      rules.push({ syscall, action: EPERM, optional: false, args: [{ index, op: 'masked_eq', mask: bit, value: bit }] });
    }
  }
  return { defaultAction: { kind: 'allow' }, architectures: ['x86_64', 'x86', 'x32'], rules };
}

async function planFrom(source) {
  if (source === undefined) return { name: 'strict-like deny list (default)', plan: strictLikePlan() };
  if (source.endsWith('.json')) return { name: source, plan: JSON.parse(readFileSync(source, 'utf8')) };
  const { planFromFile } = await import(new URL('plan/index.js', dist));
  return { name: source, plan: planFromFile(source).seccomp };
}

function ddSeconds(planFile, count) {
  const result = spawnSync(
    process.execPath,
    [new URL(import.meta.url).pathname, '--exec-under', planFile, '--', '/bin/dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${count}`],
    { encoding: 'utf8' },
  );
  const seconds = result.stderr.match(/copied, ([\d.]+) s/);
  if (result.status !== 0 || !seconds) throw new Error(`dd failed (${result.status ?? result.signal}): ${result.stderr}`);
  return Number(seconds[1]);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function bench() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { runs: { type: 'string', default: '5' }, count: { type: 'string', default: '2000000' } },
  });
  for (const source of positionals.length ? positionals : [undefined]) {
    const { name, plan } = await planFrom(source);
    if (plan) measureFilter(name, plan, Number(values.runs), values.count);
    else console.log(`seccomp filter: ${name}: the policy has none, skipped`);
  }
}

function measureFilter(name, plan, runs, count) {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-'));
  try {
    const planFile = join(dir, 'plan.json');
    writeFileSync(planFile, JSON.stringify(plan));
    const filtered = [];
    const plain = [];
    ddSeconds(planFile, 1000); // warm the page cache for node and dd
    for (let i = 0; i < runs; i++) {
      plain.push(ddSeconds('none', count));
      filtered.push(ddSeconds(planFile, count));
    }
    const [f, p] = [median(filtered), median(plain)];
    console.log(`seccomp filter: ${name} (${plan.rules.length} rules, ${plan.architectures.join('+')})`);
    console.log(`dd bs=1 count=${count}, median of ${runs} alternating runs`);
    console.log(`  without filter: ${p.toFixed(3)} s`);
    console.log(`  with filter:    ${f.toFixed(3)} s`);
    console.log(`  ratio:          ${(f / p).toFixed(3)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const separator = process.argv.indexOf('--');
if (process.argv[2] === '--exec-under') await execUnder(process.argv[3], process.argv.slice(separator + 1));
else await bench();
