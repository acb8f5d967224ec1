// init started as a fresh Node, PID 1 of the build's fresh PID namespace: the fallback when the
// supervisor cannot fork (zygote.ts), and the daemon's warm workers. Reads the request from the
// supervisor, then runs the same set-up as a forked init (setup.ts).
import { readFileSync, writeSync } from 'node:fs';
import { READY_LINE, REQUEST_FD, SETUP_FAILED, STATUS_FD, type InitRequest } from './request.js';
import { report, setUp } from './setup.js';

try {
  // Node has started: a warm worker is now one a build need not wait for.
  writeSync(STATUS_FD, READY_LINE + '\n');
  const request = JSON.parse(readFileSync(REQUEST_FD, 'utf8')) as InitRequest;
  setUp(request);
} catch (err) {
  try {
    report({ error: err instanceof Error ? err.message : String(err) });
  } finally {
    process.exit(SETUP_FAILED);
  }
}
