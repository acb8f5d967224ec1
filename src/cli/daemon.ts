// stockade daemon: the build daemon, serving builds to clients on a Unix socket.
import { command, parse, UsageError } from './args.js';

const HELP = `usage: stockade daemon [--socket PATH] [--config FILE] [--policies DIR] [--max-jobs N]

Runs builds for clients (\`stockade submit\`, or the protocol in
schemas/daemon-protocol.schema.json) on a Unix socket, each under the policy it names, as
a build user from that policy's pool. Access control (which users and groups may use which
policy, and what they may put in a spec) comes from the config file; without one only root
may build. Policies are re-read when their files change and on SIGHUP; SIGTERM lets running
builds finish within the grace period, then cancels them. On start it cleans what a crashed
predecessor left (build directories, cgroups, processes of build users, stale lock records)
and logs each removal. Logs go to stderr. Needs root.

options:
  --socket PATH       socket to listen on (default /run/stockade/daemon.sock)
  --config FILE       daemon config (YAML, schemas/daemon-config.schema.json)
  --policies DIR      directory of the served policies, NAME.yaml each (default /etc/stockade/policies)
  --max-jobs N        builds running at once (default 1)
  --state-dir DIR     where running builds are journaled (default /var/lib/stockade/daemon)
  --grace SEC         seconds running builds get after SIGTERM (default 30)
  -h, --help          show this help

exit status: 0 after a clean shutdown; 1 invalid config or cannot start; 2 usage error`;

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const args = parse(
      argv,
      {
        socket: { type: 'string' }, config: { type: 'string' }, policies: { type: 'string' },
        'max-jobs': { type: 'string' }, 'state-dir': { type: 'string' }, grace: { type: 'string' },
      },
      HELP,
    );
    if (!args) return 0;
    const v = args.values;
    if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    for (const key of ['max-jobs', 'grace'] as const) {
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
    if (process.getuid?.() !== 0) {
      process.stderr.write('stockade daemon: needs root (it runs builds as pool users in namespaces)\n');
      return 1;
    }
    const { Daemon } = await import('../daemon/server.js');
    const log = (message: string) => process.stderr.write(`stockade daemon: ${message}\n`);
    const daemon = new Daemon(config, log);
    try {
      await daemon.start();
    } catch (err) {
      log(`cannot start: ${(err as Error).message}`);
      await daemon.shutdown();
      return 1;
    }
    const reload = () => daemon.reload();
    process.on('SIGHUP', reload);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        log(`${signal} received`);
        daemon.shutdown().then(resolve);
      };
      process.once('SIGTERM', stop).once('SIGINT', stop);
    });
    process.off('SIGHUP', reload);
    return 0;
  });
}
