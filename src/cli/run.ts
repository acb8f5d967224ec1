// stockade run: one sandboxed build from a shell or a script.
import { openSync, writeSync } from 'node:fs';
import { command, parse, UsageError } from './args.js';
import { SPEC_HELP, SPEC_OPTIONS, specFromOptions } from './spec-options.js';
import { SETUP_FAILED } from '../runtime/request.js';

const HELP = `usage: stockade run --policy POLICY [options] -- BUILDER [ARG…]

Runs BUILDER in the sandbox POLICY describes, as a build user taken from the policy's pool,
streams its output, and exits with its status. Needs root.

options:
  --policy POLICY     policy file (required)
${SPEC_HELP}
  --keep-failed       keep the build directory of a failed build (made safe) and print where
                      its tree and each partial output (named by its output path) are
  --log FILE          also append the build's output to FILE
  --pool-timeout SEC  how long to wait for a free build user (default 0: fail at once)
  --json              at the end, print the build's result as one JSON object on stdout
                      (outcome, exitCode, status, termSignal, message, uid, durationMs,
                      peakMemoryBytes, cpu, keptBuildDir, keptTree, keptOutputs…); the builder's
                      stdout then goes to stderr with the rest of its output. Absent fields
                      are null. Not printed for usage errors, invalid policies, specs the
                      policy refuses or a caller who is not root (nothing is started); a spec
                      refused at start (a missing input, an existing output) prints outcome
                      "refused".
  --policies DIR      where 'extends: NAME' is looked up
  -h, --help          show this help

A policy loaded once is kept in /var/lib/stockade/plan-cache (root's alone, mode 0700;
STOCKADE_PLAN_CACHE_DIR elsewhere, empty for none) and reused while it, the policies it
extends, the schema and Stockade are unchanged.

exit status: the builder's; 128+N when killed by signal N; 124 timeout (total or silent);
125 the sandbox could not be set up (the builder never ran); 1 invalid policy or refused
spec; 2 usage error; 130/143 cancelled by SIGINT/SIGTERM`;

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const dash = argv.indexOf('--');
    const own = dash >= 0 ? argv.slice(0, dash) : argv;
    const builderArgv = dash >= 0 ? argv.slice(dash + 1) : [];
    const args = parse(
      own,
      {
        ...SPEC_OPTIONS, policy: { type: 'string' }, 'keep-failed': { type: 'boolean' },
        log: { type: 'string' }, 'pool-timeout': { type: 'string' }, policies: { type: 'string' }, json: { type: 'boolean' },
      },
      HELP,
    );
    if (!args) return 0;
    const v = args.values;
    if (!v.policy) throw new UsageError('run needs --policy POLICY');
    if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}' (put the builder after --)`);
    if (v['pool-timeout'] !== undefined && !/^\d+(\.\d+)?$/.test(v['pool-timeout'])) throw new UsageError(`--pool-timeout needs seconds, got '${v['pool-timeout']}'`);
    const { SpecRefused } = await import('../plan/spec-check.js');
    const { PolicyError } = await import('../policy/errors.js');
    const { DEFAULT_PLAN_CACHE_DIR, planForRun } = await import('../plan/cache.js');
    const cacheDir = process.env.STOCKADE_PLAN_CACHE_DIR ?? DEFAULT_PLAN_CACHE_DIR;
    let plan;
    try {
      // Inside: an invalid spec file is refused as an invalid policy is, FILE:LINE:COL and exit 1.
      const spec = await specFromOptions('run', v, builderArgv);
      ({ plan } = await planForRun(v.policy, {
        spec, specSource: 'command line', policiesDir: v.policies, callerEnv: process.env,
        // Root's alone: a caller who is not root is refused below anyway.
        cacheDir: process.getuid?.() === 0 && cacheDir !== '' ? cacheDir : undefined,
        onNotice: (message) => process.stderr.write(`stockade: note: ${message}\n`),
      }));
    } catch (err) {
      if (err instanceof PolicyError || err instanceof SpecRefused) {
        process.stderr.write(err.message + '\n');
        return 1;
      }
      throw err;
    }
    if (process.getuid?.() !== 0) {
      process.stderr.write('stockade run: needs root (it mounts, switches to a build user and sets up namespaces)\n');
      return SETUP_FAILED;
    }
    const { runBuild } = await import('../runtime/supervisor.js');
    const logFd = v.log ? openSync(v.log, 'a', 0o600) : undefined;
    const controller = new AbortController();
    let cancelledBy: NodeJS.Signals | undefined;
    const cancel = (signal: NodeJS.Signals) => {
      cancelledBy ??= signal;
      controller.abort();
    };
    process.on('SIGINT', cancel).on('SIGTERM', cancel);
    const result = await runBuild(plan, {
      keepFailed: v['keep-failed'],
      // This process does nothing else while the build runs: it forks init itself.
      forkInit: true,
      poolTimeoutMs: Number(v['pool-timeout'] ?? 0) * 1000,
      signal: controller.signal,
      onNotice: (message) => process.stderr.write(`stockade: ${message}\n`),
      onOutput: (stream, chunk) => {
        // With --json, stdout carries only the result.
        (stream === 'stdout' && !v.json ? process.stdout : process.stderr).write(chunk);
        if (logFd !== undefined) writeSync(logFd, chunk);
      },
    });
    process.off('SIGINT', cancel).off('SIGTERM', cancel);
    if (result.message) process.stderr.write(`stockade: ${result.message}\n`);
    const dropped = result.handOver;
    if (dropped && (dropped.stripped || dropped.xattrsDropped)) {
      process.stderr.write(`stockade: outputs handed over without ${dropped.stripped} setuid/setgid/sticky bits and the xattrs of ${dropped.xattrsDropped} entries\n`);
    }
    if (result.keptBuildDir) {
      const notes = [`keeping build directory '${result.keptBuildDir}'`];
      if (result.keptTree) notes.push(`its tree (${plan.build.dir} in the sandbox) is '${result.keptTree}'`);
      for (const [output, path] of Object.entries(result.keptOutputs ?? {})) notes.push(`partial output ${output} is '${path}'`);
      process.stderr.write(notes.map((n) => `stockade: note: ${n}\n`).join(''));
    }
    if (v.json) {
      const summary = { message: null, uid: null, keptBuildDir: null, keptTree: null, keptOutputs: null, peakMemoryBytes: null, cpu: null, init: null, ...result };
      process.stdout.write(JSON.stringify(summary, (_key, value: unknown) => (value === undefined ? null : value)) + '\n');
    }
    if (cancelledBy) return cancelledBy === 'SIGINT' ? 130 : 143;
    return result.exitCode;
  });
}
