// stockade submit: the daemon's client. Submits one build, prints its log as it streams, and
// exits with the build's status.
import { connect, type Socket } from 'node:net';
import { command, parse, UsageError } from './args.js';
import { parseEvent, PROTOCOL_VERSION, type Request } from '../daemon/protocol.js';
import { SPEC_HELP, SPEC_OPTIONS, specFromOptions } from './spec-options.js';
import { LineSplitter } from '../runtime/lines.js';

const DEFAULT_SOCKET = '/run/stockade/daemon.sock';

const HELP = `usage: stockade submit [--socket PATH] --policy NAME [options] -- BUILDER [ARG…]
       stockade submit [--socket PATH] --cancel ID

Asks the build daemon to run BUILDER under the policy it serves as NAME, prints the build's
output as it comes (the builder's stdout and stderr to ours, the daemon's notices to stderr),
and exits with the build's status. Interrupting it (SIGINT, SIGTERM) cancels the build.

options:
  --socket PATH       the daemon's socket (default ${DEFAULT_SOCKET})
  --policy NAME       a policy the daemon serves (required to build)
${SPEC_HELP}
  --cancel ID         cancel the build ID (yours, or any as root) and wait for its end
  -h, --help          show this help

exit status: as \`stockade run\`: the builder's; 128+N when killed by signal N; 124 timeout;
125 the sandbox could not be set up; 143 cancelled; 1 refused by the daemon or cannot reach
it; 2 usage error`;

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const dash = argv.indexOf('--');
    const own = dash >= 0 ? argv.slice(0, dash) : argv;
    const builderArgv = dash >= 0 ? argv.slice(dash + 1) : [];
    const args = parse(own, { ...SPEC_OPTIONS, socket: { type: 'string' }, policy: { type: 'string' }, cancel: { type: 'string' } }, HELP);
    if (!args) return 0;
    const v = args.values;
    if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}' (put the builder after --)`);
    let request: Request;
    if (v.cancel !== undefined) {
      if (v.policy || builderArgv.length) throw new UsageError('--cancel takes no policy or builder');
      request = { version: PROTOCOL_VERSION, type: 'cancel', id: v.cancel };
    } else {
      if (!v.policy) throw new UsageError('submit needs --policy NAME');
      const spec = await specFromOptions('submit', v, builderArgv);
      request = { version: PROTOCOL_VERSION, type: 'build', policy: v.policy, spec };
    }
    return talk(v.socket ?? DEFAULT_SOCKET, request);
  });
}

function talk(path: string, request: Request): Promise<number> {
  return new Promise((resolve) => {
    let id: string | undefined;
    let status: number | undefined;
    const socket: Socket = connect(path, () => socket.write(JSON.stringify(request) + '\n'));
    const cancel = () => {
      if (id) socket.write(JSON.stringify({ version: PROTOCOL_VERSION, type: 'cancel', id }) + '\n');
      else socket.destroy();
    };
    process.on('SIGINT', cancel).on('SIGTERM', cancel);
    const done = (code: number) => {
      process.off('SIGINT', cancel).off('SIGTERM', cancel);
      status ??= code;
      socket.destroy();
      resolve(status);
    };
    const events = new LineSplitter((line) => {
      // Whatever follows the event that ended the build is not ours to print.
      if (status !== undefined) return;
      let event;
      try {
        event = parseEvent(line);
      } catch (err) {
        process.stderr.write(`stockade: ${(err as Error).message}\n`);
        return done(1);
      }
      switch (event.type) {
        case 'accepted':
          id = event.id;
          process.stderr.write(`stockade: build ${event.id} accepted (policy ${event.policy})\n`);
          break;
        case 'queued':
          process.stderr.write(`stockade: build ${event.id} queued, position ${event.position} among your waiting builds\n`);
          break;
        case 'started':
          break;
        case 'log':
          (event.stream === 'stdout' ? process.stdout : process.stderr).write(event.stream === 'stockade' ? `stockade: ${event.text}` : event.text);
          break;
        case 'error':
          process.stderr.write(`stockade: ${event.code}: ${event.message}\n`);
          return done(1);
        case 'finished':
          if (event.message) process.stderr.write(`stockade: ${event.message}\n`);
          return done(event.exit_code);
      }
    });
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => events.push(text));
    socket.on('error', (err) => {
      process.stderr.write(`stockade: cannot talk to the daemon at ${path}: ${err.message}\n`);
      done(1);
    });
    socket.on('close', () => {
      if (status === undefined) process.stderr.write('stockade: the daemon closed the connection before the build finished\n');
      done(1);
    });
  });
}
