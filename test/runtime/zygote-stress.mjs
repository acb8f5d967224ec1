// Runs many builds in one process, each init forked from it (the way `stockade run` forks one),
// and prints one JSON line counting what happened. Started by zygote.test.ts with
// `node --single-threaded` (the CLI's own flag): node zygote-stress.mjs POLICY COUNT
import { planFromFile } from '../../dist/plan/index.js';
import { runBuild } from '../../dist/runtime/supervisor.js';

const [policy, count] = process.argv.slice(2);
const counts = { builds: 0, succeeded: 0, forked: 0, retried: 0, fallbacks: 0, wrongOutput: 0, outcomes: {} };
for (let i = 0; i < Number(count); i++) {
  // Each builder prints its own number: a build run twice would print it twice.
  const spec = { name: `stress-${i}`, builder: '/bin/sh', args: ['-c', `echo ${i}`], env: {}, inputs: ['/usr', '/bin', '/lib', '/lib64'], outputs: [], cores: 0 };
  const plan = planFromFile(policy, { spec, specSource: 'zygote-stress', callerEnv: {} });
  let stdout = '';
  const result = await runBuild(plan, {
    forkInit: true,
    onOutput: (stream, chunk) => {
      if (stream === 'stdout') stdout += chunk;
    },
    onNotice: (message) => {
      if (/forked set-up \d+ of \d+ lost/.test(message)) {
        counts.retried++;
        process.stderr.write(`${message}\n`);
      }
      if (message.includes('starting a fresh Node init')) counts.fallbacks++;
    },
  });
  counts.builds++;
  counts.outcomes[result.outcome] = (counts.outcomes[result.outcome] ?? 0) + 1;
  if (result.outcome === 'succeeded') counts.succeeded++;
  else process.stderr.write(`build ${i}: ${result.outcome}: ${result.message}\n`);
  if (result.init === 'forked') counts.forked++;
  if (stdout !== `${i}\n`) counts.wrongOutput++;
}
process.stdout.write(JSON.stringify(counts) + '\n');
