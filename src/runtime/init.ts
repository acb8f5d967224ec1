// init started as a fresh Node, PID 1 of the build's fresh PID namespace: the fallback when its
// init cannot be forked (zygote.ts, zygote-server.ts), and for plans whose network namespace the
// supervisor makes. Reads the request from the supervisor, then runs the same set-up as a forked
// init (setup.ts).
import { readFileSync } from 'node:fs';
import { REQUEST_FD, SETUP_FAILED, type InitRequest } from './request.js';
import { report, setUp } from './setup.js';

try {
  const request = JSON.parse(readFileSync(REQUEST_FD, 'utf8')) as InitRequest;
  setUp(request);
} catch (err) {
  try {
    report({ error: err instanceof Error ? err.message : String(err) });
  } finally {
    process.exit(SETUP_FAILED);
  }
}
