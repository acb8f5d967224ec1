// A refused spec or command line exits 1 with a message naming the field, whatever refuses it:
// the spec check (FILE:LINE:COL for a spec file's field), a missing input, an output that exists,
// one another build claims, a builder that would dangle in the sandbox. 125 stays for set-up
// failures inside the sandbox.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planFromFile } from '../../src/plan/index.js';
import { BuilderRefused, checkBuilder } from '../../src/runtime/paths.js';
import { CLEAN_ENV, CLI, IS_ROOT, NOT_ROOT_REASON, TOOL_INPUTS, leftovers, makePolicy, removeSandbox, run, runArgs, type Sandbox } from './helpers.js';

const GUIX_DEFAULT = join(import.meta.dirname, '../../policies/guix-default.yaml');

function stockade(args: string[], env: NodeJS.ProcessEnv = CLEAN_ENV): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('a spec file field refused by the policy is named FILE:LINE:COL; one added on the command line by "command line"', async (t) => {
  const dir = t.testdir();
  const spec = join(dir, 'spec.yaml');
  writeFileSync(spec, 'name: hello\nbuilder: /bin/sh\ninputs:\n  - /usr\n  - /etc/passwd\ncores: 2\n');
  const r = stockade(['run', '--policy', GUIX_DEFAULT, '--spec', spec, '--input', '/etc/shadow']);
  t.equal(r.status, 1);
  t.equal(r.stderr, [
    `${spec}:5:5: refused: input /etc/passwd is not under filesystem.inputs.under (/gnu/store, /usr, /bin, /lib, /lib64)`,
    'command line: refused: input /etc/shadow is not under filesystem.inputs.under (/gnu/store, /usr, /bin, /lib, /lib64)',
    '',
  ].join('\n'));
});

t.test('an invalid spec file: FILE:LINE:COL and exit 1, as an invalid policy', async (t) => {
  const spec = join(t.testdir(), 'spec.yaml');
  writeFileSync(spec, 'name: hello\nbuilder: /bin/sh\ncores: many\n');
  const r = stockade(['run', '--policy', GUIX_DEFAULT, '--spec', spec]);
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`^${spec}:3:8: `));
  t.notMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
});

t.test('checkBuilder: a builder whose symlink leads outside the inputs is refused, naming the link and its target', async (t) => {
  const dir = t.testdir();
  mkdirSync(join(dir, 'in'));
  mkdirSync(join(dir, 'alternatives'));
  writeFileSync(join(dir, 'in', 'mawk'), '#!/bin/sh\n');
  // /usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk, with only /usr an input.
  symlinkSync(join(dir, 'alternatives', 'awk'), join(dir, 'in', 'awk'));
  symlinkSync(join(dir, 'in', 'mawk'), join(dir, 'alternatives', 'awk'));
  symlinkSync(join(dir, 'in', 'nowhere'), join(dir, 'in', 'dangling'));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `stockade: 1\nname: p\nextends: ${GUIX_DEFAULT}\nfilesystem:\n  inputs: { under: [${dir}] }\n`);
  const plan = (builder: string) => planFromFile(policy, { spec: { name: 'b', builder, inputs: [join(dir, 'in')] } });
  t.throws(() => checkBuilder(plan(join(dir, 'in', 'awk'))), new BuilderRefused(
    `builder ${join(dir, 'in', 'awk')} is a symlink to ${join(dir, 'alternatives', 'awk')}, outside the build's inputs (${join(dir, 'in')}): it would dangle in the sandbox`));
  t.throws(() => checkBuilder(plan(join(dir, 'in', 'dangling'))), { name: 'BuilderRefused', message: `builder ${join(dir, 'in', 'dangling')}, through the symlink ${join(dir, 'in', 'dangling')} -> ${join(dir, 'in', 'nowhere')}, dangles: ${join(dir, 'in', 'nowhere')} does not exist on the host` });
  t.throws(() => checkBuilder(plan(join(dir, 'in', 'none'))), { name: 'BuilderRefused', message: `builder ${join(dir, 'in', 'none')}: no such file on the host` });
  t.doesNotThrow(() => checkBuilder(plan(join(dir, 'in', 'mawk'))));
});

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
} else {
  const refused = (t: Test, sb: Sandbox, r: { status: number | null; stdout: string; stderr: string }, message: string) => {
    t.equal(r.status, 1, 'exit 1, as a refused spec');
    t.equal(r.stdout, '', 'the builder never ran');
    t.match(r.stderr, `stockade: refused: ${message}`);
    t.notMatch(r.stderr, /ENOENT.*stat|lstat|realpath/, "no bare system call error");
    t.same(leftovers(sb).filter((l) => !l.startsWith('cgroups under')), []);
  };

  t.test('a missing input: exit 1, naming the input', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const input = join(sb.dir, 'nonexistent');
    refused(t, sb, run(sb, 'echo the builder ran', ['--input', input]), `command line: inputs[4]: input ${input}: No such file or directory`);
  });

  t.test('a missing input listed in a spec file: named by its FILE:LINE:COL', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const input = join(sb.dir, 'nonexistent');
    const spec = join(sb.dir, 'spec.yaml');
    writeFileSync(spec, `name: hello\nbuilder: /bin/sh\ninputs: [/usr, ${input}]\n`);
    refused(t, sb, run(sb, 'echo the builder ran', ['--spec', spec]), `${spec}:3:${'inputs: [/usr, '.length + 1}: inputs[1]: input ${input}: No such file or directory`);
  });

  t.test('a filesystem.paths source the host lacks: 125, the setting named by its FILE:LINE:COL', async (t) => {
    const missing = `/nonexistent-stockade-${process.pid}`;
    const sb = makePolicy('guix-default', '', 4, `  paths:\n    - { source: /usr/bin, target: /opt/bin }\n    - { source: ${missing}, target: /opt/x }\n`);
    t.teardown(() => removeSandbox(sb));
    const r = run(sb, 'echo the builder ran');
    t.equal(r.status, 125, 'the sandbox could not be set up');
    t.equal(r.stdout, '', 'the builder never ran');
    t.equal(r.stderr, `stockade: ${sb.policy}:12:7: filesystem.paths[1]: source ${missing}: No such file or directory\n`);
    t.same(leftovers(sb).filter((l) => !l.startsWith('cgroups under')), []);
  });

  t.test('an output that exists: exit 1, naming the output', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    mkdirSync(out);
    refused(t, sb, run(sb, 'echo the builder ran', ['--output', out]), `output ${out} already exists`);
  });

  t.test('an output another running build claims: exit 1, naming both', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const out = join(sb.dir, 'out');
    const gate = join(sb.dir, 'gate');
    mkdirSync(gate);
    const first = spawn(process.execPath, runArgs(sb, `echo ready; while [ ! -e ${gate}/go ]; do sleep 0.05; done; mkdir ${out}`, ['--input', gate, '--output', out]), { env: { STOCKADE_BUILDS_DIR: sb.registry, ...CLEAN_ENV } });
    const done = new Promise<number | null>((resolve) => first.on('close', resolve));
    await new Promise<void>((resolve) => first.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    const second = run(sb, 'echo the builder ran', ['--output', join(out, 'sub')]);
    writeFileSync(join(gate, 'go'), '');
    t.equal(await done, 0, 'the first build succeeds');
    refused(t, sb, second, `output ${join(out, 'sub')} lies under output ${out} of build`);
  });

  t.test('a builder that resolves through a symlink outside the inputs: exit 1, naming the link and its target, before the build', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    mkdirSync(join(sb.dir, 'bin'));
    mkdirSync(join(sb.dir, 'alternatives'));
    symlinkSync('/bin/sh', join(sb.dir, 'alternatives', 'sh'));
    symlinkSync(join(sb.dir, 'alternatives', 'sh'), join(sb.dir, 'bin', 'sh'));
    const r = stockade(['run', '--policy', sb.policy, ...TOOL_INPUTS.flatMap((i) => ['--input', i]), '--input', join(sb.dir, 'bin'), '--', join(sb.dir, 'bin', 'sh'), '-c', 'echo the builder ran'], { STOCKADE_BUILDS_DIR: sb.registry, ...CLEAN_ENV });
    refused(t, sb, r, `builder ${join(sb.dir, 'bin', 'sh')} is a symlink to ${join(sb.dir, 'alternatives', 'sh')}, outside the build's inputs`);
  });
}
