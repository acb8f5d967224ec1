#!/usr/bin/env -S node --single-threaded
// --single-threaded: `run` forks its build's init from this process (runtime/zygote.ts), which is
// safe only while V8 posts no work to other threads.
// Entry point: dispatches to one module per command, imported lazily so each command
// loads only what it uses.
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type CommandModule = { main(argv: string[]): Promise<number> | number };

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  validate: { summary: 'check policy files', load: () => import('./validate.js') },
  run: { summary: 'run one build in the sandbox a policy describes', load: loadRun },
  pool: { summary: 'create, inspect and check the build-user pool', load: () => import('./pool.js') },
  explain: { summary: 'show the Plan a policy (and a build spec) resolves to', load: () => import('./explain.js') },
  audit: { summary: 'find weaknesses in policies and score their exposure (text, JSON, SARIF)', load: () => import('./audit.js') },
  diff: { summary: 'compare the Plans of two policies: what weakens, what strengthens', load: () => import('./diff.js') },
  daemon: { summary: 'serve builds to clients on a Unix socket, with access control per policy', load: () => import('./daemon.js') },
  submit: { summary: 'submit a build to the daemon and stream its log', load: () => import('./submit.js') },
  seccomp: { summary: "print a policy's seccomp filter (pfc, bpf or json)", load: () => import('./seccomp.js') },
  runner: { summary: "serve Buildbarn's runner interface: bb_worker runs each remote action in a sandbox", load: () => import('./runner.js') },
  conformance: { summary: 'prove each isolation property of policies from inside real sandboxes (TAP)', load: () => import('./conformance.js') },
};

/**
 * `run` as one CommonJS file, made by `npm run build` (scripts/bundle-run.mjs): Node's ES module
 * loader, for its ~65 modules, was a third of a cold run's CPU. tsc rewrites run.js and every
 * module it imports, so a bundle older than run.js (or none) is not used: the ES modules, the
 * same code, run instead.
 */
async function loadRun(): Promise<CommandModule> {
  const bundle = fileURLToPath(new URL('./run.cjs', import.meta.url));
  const bundled = statSync(bundle, { throwIfNoEntry: false });
  const compiled = statSync(fileURLToPath(new URL('./run.js', import.meta.url)), { throwIfNoEntry: false });
  if (!bundled || (compiled && compiled.mtimeMs > bundled.mtimeMs)) return import('./run.js');
  // Compiled through node:vm as the yaml parser is: Node's require() of it cost ~15 ms more CPU.
  const { loadCompiled } = await import('../policy/compiled.js');
  return loadCompiled(bundle) as CommandModule;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'usage: stockade COMMAND [OPTIONS]',
    '',
    'Stockade runs package builds in a sandbox described by a declarative policy.',
    '',
    'commands:',
    ...lines,
    '',
    'Run `stockade COMMAND --help` for the options of a command.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage() + '\n');
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-V') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    process.stdout.write(`stockade ${pkg.version}\n`);
    return 0;
  }
  const entry = COMMANDS[command];
  if (!entry) {
    process.stderr.write(`stockade: unknown command '${command}'\n\n${usage()}\n`);
    return 2;
  }
  const mod = await entry.load();
  return mod.main(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`stockade: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
