// stockade daemon: the build daemon, serving builds to clients on a Unix socket.
import { lstatSync, type Stats } from 'node:fs';
import { isAbsolute } from 'node:path';
import { command, parse, UsageError } from './args.js';
import type { DaemonDefaults } from '../daemon/defaults.js';

const HELP = `usage: stockade daemon [--socket PATH] [--config FILE] [--policies DIR] [--warm N] [guix-daemon options]

Runs builds for clients (\`stockade submit\`, or the protocol in
schemas/daemon-protocol.schema.json) on a Unix socket, each under the policy it names, as
a build user from that policy's pool. Access control (which users and groups may use which
policy, and what they may put in a spec) comes from the config file; without one only root
may build. Policies are re-read when their files change and on SIGHUP; SIGTERM lets running
builds finish within the grace period, then cancels them. On start it cleans what a crashed
predecessor left (build directories, cgroups, processes of build users, stale lock records)
and logs each removal. Logs go to stderr; each build's whole log is also kept in
STATE_DIR/logs (bounded by max_log_size and logs_kept). Needs root.

Every client is treated as hostile. A request nested deeper than 64 levels or longer than
1 MiB is a bad-request; a failure on one build's path ends that build and is logged with its
id. When a client does not read, its builds' output is no longer read either (the builder
blocks on write; timeouts, max_silent included, still apply) once 1 MiB waits for it. The
config bounds what one user may hold, and serves users in turn:
  max_running_per_user      builds of one uid running at once (default: max_jobs)
  max_queued_per_user       builds of one uid waiting; more are refused (default 16)
  max_connections           connections open at once (default 256)
  max_connections_per_user  connections of one uid (default 16)
  idle_timeout              seconds a connection without a build of its own may go without
                            a complete request line (default 30)
  max_log_size, logs_kept   bytes kept of each build's log file (default 64 MiB), files kept
                            (default 1000)

options:
  --socket PATH       socket to listen on (default /run/stockade/daemon.sock)
  --config FILE       daemon config (YAML, schemas/daemon-config.schema.json)
  --policies DIR      directory of the served policies, NAME.yaml each (default /etc/stockade/policies)
  --state-dir DIR     holds the daemon's lock, one daemon per directory (default /var/lib/stockade/daemon);
                      builds are recorded, as stockade run's are, in /var/lib/stockade/builds
                      (STOCKADE_BUILDS_DIR), and what dead ones left is removed at start
  --grace SEC         seconds running builds get after SIGTERM (default 30)
  --warm N            zygote processes kept started (default: as --max-jobs, one per job slot):
                      a build takes one for its run, which forks its init, so a build pays a
                      fork, not a Node start-up; a fork that fails is retried, and after 3 the
                      build's init is a fresh Node (logged). Builds finding no free zygote (N
                      below --max-jobs), slirp builds, and all builds with 0 start a fresh Node
                      init
  -h, --help          show this help

guix-daemon's options, as daemon-wide bounds that a policy or a request may tighten, never loosen:
  --max-jobs N        builds running at once (default 1)
  --cores N           at most N cores per build: a request for 0 (all) or more gets N (default: no bound)
  --timeout SEC       a build runs at most SEC seconds; the policy's timeouts.total applies
                      when smaller (default 0: only the policy's)
  --max-silent-time SEC  as --timeout, for timeouts.max_silent
  --keep-failed       keep the build directory of failed builds (made safe as outputs are)
  --build-users-group=GROUP
                      builds run only as members of GROUP: a policy on the default group
                      pool (guixbuild) takes its users from GROUP; a policy naming another
                      group or a uid range is refused, as its users were not given to this daemon
  --chroot-directory=DIR
                      bind DIR (which must exist) read-only at the same path into every build;
                      repeatable. Refused for a DIR that would hide /, /proc, /dev, /tmp, /etc, a
                      file Stockade writes, the build directory or another mount of the plan (a
                      request whose plan has such a mount fails); nodev, nosuid, and still subject
                      to the policy's Landlock rules

exit status: 0 after a clean shutdown; 1 invalid config, cannot start, or the shutdown failed;
2 usage error`;

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const args = parse(
      argv,
      {
        socket: { type: 'string' }, config: { type: 'string' }, policies: { type: 'string' },
        'max-jobs': { type: 'string' }, 'state-dir': { type: 'string' }, grace: { type: 'string' }, warm: { type: 'string' },
        cores: { type: 'string' }, timeout: { type: 'string' }, 'max-silent-time': { type: 'string' }, 'keep-failed': { type: 'boolean' },
        'build-users-group': { type: 'string' }, 'chroot-directory': { type: 'string', multiple: true },
      },
      HELP,
    );
    if (!args) return 0;
    const v = args.values;
    if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    for (const key of ['max-jobs', 'grace', 'warm', 'cores', 'timeout', 'max-silent-time'] as const) {
      if (v[key] !== undefined && !/^\d+$/.test(v[key]!)) throw new UsageError(`--${key} needs a whole number, got '${v[key]}'`);
    }
    if (v['max-jobs'] === '0') throw new UsageError('--max-jobs must be at least 1');
    const { DEFAULT_CONFIG, loadDaemonConfig } = await import('../daemon/config.js');
    const { PolicyError } = await import('../policy/errors.js');
    let config;
    try {
      config = v.config ? loadDaemonConfig(v.config) : { ...DEFAULT_CONFIG };
    } catch (err) {
      if (err instanceof PolicyError) {
        process.stderr.write(err.message + '\n');
        return 1;
      }
      throw err;
    }
    if (v.socket) config.socket = v.socket;
    if (v.policies) config.policies = v.policies;
    if (v['state-dir']) config.stateDir = v['state-dir'];
    if (v['max-jobs']) config.maxJobs = Number(v['max-jobs']);
    if (v.grace) config.shutdownGraceSeconds = Number(v.grace);
    if (v.warm !== undefined) config.zygotes = Number(v.warm);
    config.defaults = await daemonDefaults(v);
    if (process.getuid?.() !== 0) {
      process.stderr.write('stockade daemon: needs root (it runs builds as pool users in namespaces)\n');
      return 1;
    }
    const { Daemon } = await import('../daemon/server.js');
    const log = (message: string) => process.stderr.write(`stockade daemon: ${message}\n`);
    containUnhandled(log);
    const daemon = new Daemon(config, log);
    try {
      await daemon.start();
    } catch (err) {
      log(`cannot start: ${(err as Error).message}`);
      await daemon.shutdown().catch((e: unknown) => log(`shutdown failed: ${(e as Error)?.message ?? String(e)}`));
      return 1;
    }
    return serveUntilStopped(daemon, log);
  });
}

/**
 * A rejection nobody handled is a daemon bug, not a reason to orphan every running build:
 * logged, and the daemon goes on serving.
 */
export function containUnhandled(log: (message: string) => void): void {
  process.on('unhandledRejection', (reason) => log(`internal error (unhandled rejection), still serving: ${(reason as Error)?.stack ?? String(reason)}`));
}

/** Serves until SIGTERM or SIGINT, then shuts down; 1 when the shutdown failed. */
export async function serveUntilStopped(daemon: { reload(): void; shutdown(): Promise<void> }, log: (message: string) => void): Promise<number> {
  const reload = () => {
    try {
      daemon.reload();
    } catch (err) {
      log(`reload failed: ${(err as Error).message}`);
    }
  };
  process.on('SIGHUP', reload);
  const status = await new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop).off('SIGINT', stop);
      log(`${signal} received`);
      daemon.shutdown().then(
        () => resolve(0),
        (err: unknown) => {
          log(`shutdown failed: ${(err as Error)?.stack ?? String(err)}`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', stop).on('SIGINT', stop);
  });
  process.off('SIGHUP', reload);
  return status;
}

interface DefaultsValues {
  cores?: string;
  timeout?: string;
  'max-silent-time'?: string;
  'keep-failed'?: boolean;
  'build-users-group'?: string;
  'chroot-directory'?: string[];
}

/** The guix-daemon options, checked against the host now: a typo stops the start, not a build. */
async function daemonDefaults(v: DefaultsValues): Promise<DaemonDefaults> {
  const group = v['build-users-group'];
  if (group !== undefined) {
    const { getgrnam } = await import('../ffi/nss.js');
    if (!getgrnam(group)) throw new UsageError(`--build-users-group: no group named '${group}'`);
  }
  const chrootDirectories = (v['chroot-directory'] ?? []).map((path) => {
    if (!isAbsolute(path)) throw new UsageError(`--chroot-directory needs an absolute path, got '${path}'`);
    let stat: Stats;
    try {
      stat = lstatSync(path);
    } catch (err) {
      throw new UsageError(`--chroot-directory=${path}: ${(err as Error).message}`);
    }
    // A symlink would be followed by the bind: name what it points to instead.
    if (stat.isSymbolicLink()) throw new UsageError(`--chroot-directory=${path} is a symbolic link; give the path it points to`);
    return { path, kind: stat.isDirectory() ? ('dir' as const) : ('file' as const) };
  });
  const { normalise } = await import('../policy/semantics.js');
  const { checkChrootDirectories } = await import('../daemon/defaults.js');
  try {
    checkChrootDirectories(chrootDirectories.map((d) => normalise(d.path)));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return {
    buildUsersGroup: group,
    chrootDirectories,
    cores: Number(v.cores ?? 0),
    timeoutSeconds: Number(v.timeout ?? 0),
    maxSilentSeconds: Number(v['max-silent-time'] ?? 0),
    keepFailed: v['keep-failed'] ?? false,
  };
}
