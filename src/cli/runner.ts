// stockade runner: Buildbarn's runner service on a Unix socket; bb_worker sends it each action.
import { realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { command, parse, UsageError } from './args.js';

const SHIPPED_POLICIES = fileURLToPath(new URL('../../policies/', import.meta.url));

const HELP = `usage: stockade runner --socket PATH --build-directory DIR [--policy POLICY] [options]

Serves Buildbarn's runner interface (buildbarn.runner.Runner: CheckReadiness, Run) over gRPC
on the Unix socket PATH, so that bb_worker runs every action in a Stockade sandbox of POLICY.
Point a worker's runners entry (endpoint unix://PATH) at it; one socket serves one policy, so
run one runner per policy, each matched to a runners entry by a platform property such as
stockade-policy=NAME. Needs root.

Each action: every path of the request is opened beneath DIR (no '..', no symlinks; others are
answered INVALID_ARGUMENT); the input root is bound writable as the sandbox's build directory
(at its host path, or at the policy's remote_execution.input_root), the working directory
beneath it, the request's temporary directory as /tmp, the environment exactly the request's;
stdout and stderr go to the requested files. The action runs as a build user of the policy's
pool; its directories are lent to that user while it runs, and everything it made is given to
DIR's owner (bb_worker's user) once it has ended. Cancelling the call kills the whole action.

options:
  --socket PATH          Unix socket to listen on (a stale socket there is replaced; mode 0600)
  --socket-group GROUP   make the socket 0660 root:GROUP (name or GID), for a worker not run as root
  --build-directory DIR  bb_worker's build directory: every request path is relative to it
  --policy POLICY        policy file, or the name of a shipped policy (default remote-exec)
  --policies DIR         where 'extends: NAME' is looked up
  --pool-timeout SEC     how long an action waits for a free build user (default 3600); a call
                         cancelled or past its deadline stops waiting at once
  --warm N               zygote processes kept started (default: the number of CPUs): an action
                         takes one for its run, which forks its init, so it pays a fork, not a
                         Node start-up; actions finding no free zygote, policies whose network
                         slirp4netns makes, and all with 0 start a fresh Node init
  --max-tree-entries N   most entries walked in an action's input root, and in its temporary
                         directory, to lend and hand them back (default 1000000); an action that
                         made more is answered RESOURCE_EXHAUSTED, the rest left to the build user
  -h, --help             show this help

Answers: exit_code (-1 when a signal ended the action) and one POSIXResourceUsage (user and
system time and peak memory of the action's cgroup, termination_signal). INVALID_ARGUMENT for a
request that cannot run as it is, INTERNAL when the sandbox cannot be set up, RESOURCE_EXHAUSTED
when the action made more entries (or deeper, past 256 levels) than can be handed back. Runs until
SIGINT or SIGTERM, which cancel the running actions first.`;

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const args = parse(argv, { socket: { type: 'string' }, 'build-directory': { type: 'string' }, policy: { type: 'string' }, policies: { type: 'string' }, 'pool-timeout': { type: 'string' }, 'socket-group': { type: 'string' }, 'max-tree-entries': { type: 'string' }, warm: { type: 'string' } }, HELP);
    if (!args) return 0;
    const v = args.values;
    if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    if (!v.socket) throw new UsageError('runner needs --socket PATH');
    if (!v['build-directory']) throw new UsageError('runner needs --build-directory DIR');
    const poolTimeout = v['pool-timeout'] ?? '3600';
    if (!/^\d+(\.\d+)?$/.test(poolTimeout)) throw new UsageError(`--pool-timeout needs seconds, got '${poolTimeout}'`);
    const maxTreeEntries = v['max-tree-entries'] ?? '1000000';
    if (!/^[1-9]\d{0,9}$/.test(maxTreeEntries)) throw new UsageError(`--max-tree-entries needs a positive count, got '${maxTreeEntries}'`);
    const warm = v.warm ?? String(availableParallelism());
    if (!/^\d{1,4}$/.test(warm)) throw new UsageError(`--warm needs a count of zygotes, got '${warm}'`);
    let socketGroup: number | undefined;
    if (v['socket-group'] !== undefined) {
      const { getgrnam } = await import('../ffi/nss.js');
      socketGroup = /^\d+$/.test(v['socket-group']) ? Number(v['socket-group']) : getgrnam(v['socket-group'])?.gid;
      if (socketGroup === undefined) throw new UsageError(`--socket-group: no group ${v['socket-group']}`);
    }
    const policyArg = v.policy ?? 'remote-exec';
    const policyFile = /^[a-z0-9][a-z0-9._-]*$/.test(policyArg) && !policyArg.endsWith('.yaml') ? `${SHIPPED_POLICIES}${policyArg}.yaml` : policyArg;
    const { loadPolicy } = await import('../policy/load.js');
    const { PolicyError } = await import('../policy/errors.js');
    let loaded;
    try {
      loaded = loadPolicy(policyFile, { policiesDir: v.policies });
    } catch (err) {
      if (err instanceof PolicyError) {
        process.stderr.write(err.message + '\n');
        return 1;
      }
      throw err;
    }
    if (process.getuid?.() !== 0) {
      process.stderr.write('stockade runner: needs root (each action is a sandbox: mounts, a build user, namespaces)\n');
      return 125;
    }
    const { openat, fstat } = await import('../ffi/fsat.js');
    const { AT_FDCWD, OPEN_FLAGS, nativeSeccompArch } = await import('../ffi/arch.js');
    const { serveRunner } = await import('../runner/service.js');
    // The admin's directory, opened once; every request path is opened beneath this fd.
    const buildDirectory = realpathSync(v['build-directory']);
    const buildDirFd = openat(AT_FDCWD, buildDirectory, OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_CLOEXEC);
    const st = fstat(buildDirFd);
    const server = await serveRunner(
      {
        loaded,
        buildDirectory,
        buildDirFd,
        owner: { uid: st.uid, gid: st.gid },
        nativeArch: nativeSeccompArch(),
        poolTimeoutMs: Number(poolTimeout) * 1000,
        maxTreeEntries: Number(maxTreeEntries),
        onNotice: (message) => process.stderr.write(`stockade runner: ${message}\n`),
      },
      v.socket,
      { socketGroup, zygotes: Number(warm) },
    );
    process.stderr.write(`stockade runner: serving policy ${loaded.policy.name} for ${buildDirectory} on ${v.socket}\n`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    process.stderr.write(`stockade runner: ${signal}: cancelling ${server.running} running action(s)\n`);
    await server.close();
    return 0;
  });
}
