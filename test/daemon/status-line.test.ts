// init's status lines are read by the daemon's own process: one that is not JSON must fail that
// build's set-up, never throw out of the supervisor (which would take every build with it). A
// stand-in for a warm init reads its request, then writes a line that is not JSON and exits.
import t from 'tap';
import { spawn } from 'node:child_process';
import { loadPolicy } from '../../src/policy/load.js';
import { plan as makePlan } from '../../src/plan/plan.js';
import { EXIT, runBuild } from '../../src/runtime/supervisor.js';
import { IS_ROOT, NOT_ROOT_REASON, TOOL_INPUTS, leftovers, makePolicy, removeSandbox } from '../runtime/helpers.js';

if (!IS_ROOT) {
  t.comment(NOT_ROOT_REASON);
  t.plan(0, NOT_ROOT_REASON);
} else {
  t.test('a status line that is not JSON: setup-failed, named, and the supervisor goes on', async (t) => {
    const sb = makePolicy('guix-default');
    t.teardown(() => removeSandbox(sb));
    const loaded = loadPolicy(sb.policy);
    const plan = makePlan(loaded, { name: 'status-line', builder: '/bin/true', inputs: TOOL_INPUTS });
    const script = 'const fs = require("node:fs"); fs.readFileSync(3); fs.writeSync(4, "{not json\\n");';
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], env: {} });
    const result = await runBuild(plan, { init: { child, ready: true } });
    t.equal(result.outcome, 'setup-failed');
    t.equal(result.exitCode, EXIT.setupFailed);
    t.equal(result.message, 'sandbox setup failed: unreadable status line from init: "{not json"');
    t.same(leftovers(sb).filter((l) => !l.startsWith('cgroups under')), []);
  });
}
