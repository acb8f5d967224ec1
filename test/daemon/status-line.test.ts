// init's status lines are read by the daemon's own process: one that is not JSON must fail that
// build's set-up, never throw out of the supervisor (which would take every build with it). A
// stand-in for a zygote's forked init writes a line that is not JSON and exits.
import t from 'tap';
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { loadPolicy } from '../../src/policy/load.js';
import { plan as makePlan } from '../../src/plan/plan.js';
import { EXIT, runBuild } from '../../src/runtime/supervisor.js';
import { ForkedInit } from '../../src/runtime/zygote.js';
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
    const script = 'require("node:fs").writeSync(3, "{not json\\n");';
    const zygote = {
      fork: () => {
        const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: {} });
        const init = new ForkedInit(child.pid!, child.stdout as Socket, child.stderr as Socket, child.stdio[3] as Socket, {
          statusEndsAtDeath: true,
          start: () => {},
          signal: (signal) => child.kill(signal),
        });
        child.once('exit', (code, signal) => init.reaped({ code, signal }));
        return init;
      },
    };
    const result = await runBuild(plan, { zygote });
    t.equal(result.outcome, 'setup-failed');
    t.equal(result.exitCode, EXIT.setupFailed);
    t.equal(result.message, 'sandbox setup failed: unreadable status line from init: "{not json"');
    t.same(leftovers(sb).filter((l) => !l.startsWith('cgroups under')), []);
  });
}
