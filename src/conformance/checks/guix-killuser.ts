import type { SandboxCheck } from '../check.js';
import { poolProcesses } from '../host.js';
import { scriptPlan } from '../sandbox.js';

export const check: SandboxCheck = {
  id: 'GUIX-KILLUSER', kind: 'sandbox', property: "no process of the build's UID remains after the build",
  attack: 'a builder forks a child that ignores signals and calls setsid, hoping to outlive the build and meddle with the next one under that UID',
  proves: ['runtime: PID namespace, pool reaping'],
  run: async ({ subject, run }) => {
    const script = "/usr/bin/setsid /bin/sh -c \"trap '' TERM HUP INT; while :; do /bin/sleep 1; done\" & echo forked";
    const build = await run(scriptPlan(subject, script));
    return {
      expected: { outcome: 'succeeded', processesLeft: 0 },
      observed: { outcome: build.result.outcome, processesLeft: poolProcesses(subject.plan) },
    };
  },
};
