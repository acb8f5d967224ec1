// A hostile (or probing) client of the daemon for test/daemon/hostile.test.ts, run as another
// user: Node built-ins only, so that user needs to read nothing of the repository but this
// file. Speaks the protocol directly and prints one JSON line of what it saw.
import { connect } from 'node:net';

const [mode, socketPath, ...args] = process.argv.slice(2);
let reported = false;
const report = (value) => {
  if (!reported) process.stdout.write(JSON.stringify(value) + '\n');
  reported = true;
};
const open = () => new Promise((resolve, reject) => {
  const socket = connect(socketPath, () => resolve(socket));
  socket.once('error', reject);
});
function onEvents(socket, handle) {
  let rest = '';
  socket.setEncoding('utf8');
  socket.on('data', (text) => {
    rest += text;
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      handle(JSON.parse(line));
    }
  });
}
const buildLine = (spec) => JSON.stringify({ version: 1, type: 'build', policy: 'test', spec }) + '\n';

switch (mode) {
  case 'deep': {
    // ~400 KB, under the 1 MiB line cap.
    const socket = await open();
    const seen = [];
    onEvents(socket, (event) => {
      seen.push(event);
      if (seen.length === 1) socket.write(JSON.stringify({ version: 1, type: 'cancel', id: '0123456789abcdef' }) + '\n');
      else {
        report(seen.map((e) => e.code));
        socket.destroy();
      }
    });
    socket.write(`{"version":${'['.repeat(200_000)}${']'.repeat(200_000)}}\n`);
    break;
  }
  case 'flood': {
    // Submits the build, then reads nothing for HOLD ms; then everything, to the end.
    const [spec, hold] = [JSON.parse(args[0]), Number(args[1])];
    const socket = await open();
    socket.write(buildLine(spec));
    socket.pause();
    setTimeout(() => {
      let bytes = 0;
      onEvents(socket, (event) => {
        if (event.type === 'log' && event.stream === 'stdout') bytes += Buffer.byteLength(event.text);
        if (event.type === 'finished' || event.type === 'error') {
          report({ id: event.id, bytes, outcome: event.outcome ?? event.code });
          socket.destroy();
        }
      });
      socket.resume();
    }, hold);
    break;
  }
  case 'queue': {
    // COUNT build requests in one write.
    const [spec, count] = [JSON.parse(args[0]), Number(args[1])];
    const socket = await open();
    const refused = {};
    const outcomes = {};
    let accepted = 0;
    let answered = 0;
    let finished = 0;
    let [shortestMs, longestMs] = [Infinity, 0];
    const check = () => {
      if (answered === count && finished === accepted) {
        report({ accepted, refused, outcomes, shortestMs, longestMs });
        socket.destroy();
      }
    };
    onEvents(socket, (event) => {
      if (event.type === 'accepted') [accepted, answered] = [accepted + 1, answered + 1];
      if (event.type === 'error') {
        refused[event.code] = (refused[event.code] ?? 0) + 1;
        answered++;
      }
      if (event.type === 'finished') {
        outcomes[event.outcome] = (outcomes[event.outcome] ?? 0) + 1;
        [shortestMs, longestMs] = [Math.min(shortestMs, event.duration_ms), Math.max(longestMs, event.duration_ms)];
        finished++;
      }
      check();
    });
    socket.write(buildLine(spec).repeat(count));
    break;
  }
  case 'slow': {
    // One byte of a request every 200 ms, never a whole line.
    const socket = await open();
    const started = Date.now();
    const codes = [];
    onEvents(socket, (event) => codes.push(event.code));
    const text = buildLine({ name: 'slow', builder: '/bin/true' });
    let sent = 0;
    const drip = setInterval(() => socket.write(text[sent++ % (text.length - 1)]), 200);
    socket.on('close', () => {
      clearInterval(drip);
      report({ codes, closedAfterMs: Date.now() - started, sent });
    });
    socket.on('error', () => {});
    break;
  }
  case 'idle': {
    // COUNT connections that send nothing; each one's end.
    const count = Number(args[0]);
    const started = Date.now();
    const codes = {};
    let closed = 0;
    let lastClosedMs = 0;
    for (let i = 0; i < count; i++) {
      const socket = await open().catch(() => undefined);
      if (!socket) {
        codes['connect-failed'] = (codes['connect-failed'] ?? 0) + 1;
        closed++;
        continue;
      }
      let code = 'closed-silently';
      onEvents(socket, (event) => (code = event.code));
      socket.on('error', () => {});
      socket.on('close', () => {
        codes[code] = (codes[code] ?? 0) + 1;
        lastClosedMs = Date.now() - started;
        if (++closed === count) report({ codes, lastClosedMs });
      });
    }
    break;
  }
  case 'probe': {
    // One build; when it started after being submitted.
    const spec = JSON.parse(args[0]);
    const socket = await open();
    let submitted = 0;
    let startedAfterMs;
    onEvents(socket, (event) => {
      if (event.type === 'started') startedAfterMs = Date.now() - submitted;
      if (event.type === 'finished' || event.type === 'error') {
        report({ startedAfterMs, outcome: event.outcome ?? event.code });
        socket.destroy();
      }
    });
    submitted = Date.now();
    socket.write(buildLine(spec));
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
