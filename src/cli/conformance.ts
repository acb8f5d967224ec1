// stockade conformance: proves each isolation property of policies from inside real sandboxes.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { command, parse, UsageError } from './args.js';

const HELP = `usage: stockade conformance [--policy POLICY]… [--only ID,…] [--json FILE] [--pool-range FIRST:COUNT[:GID]] [--init HOW]
       stockade conformance --list [--json FILE]

Builds real sandboxes under each policy (default: every shipped policy) and proves, check by
check, that what a build observes from inside is what the policy's Plan says: a probe (node and
Stockade's FFI layer, bound in read-only for its run) reports facts from inside, and each check
compares them with the Plan; some checks run builds of their own (concurrency, fork bomb,
timeouts, leftovers, known escapes). Output is TAP 13, expected and observed values in YAML.
Needs root. The catalogue: docs/conformance.md, or --list.

options:
  --policy POLICY        a policy file or a shipped policy's name (repeatable)
  --only ID,…            run only these checks
  --json FILE            also write the results as JSON to FILE (- for stdout instead of TAP)
  --pool-range F:C[:G]   use the UIDs F..F+C-1 (group G, default F) instead of the policy's pool,
                         on machines without the pool's accounts; the report says so
  --policies DIR         where 'extends: NAME' is looked up
  --via-runner           run the probe as a remote action of \`stockade runner\` (its input root,
                         temporary directory, exact environment) and compare with the Plan the
                         runner made for it; the checks that start builds of their own are skipped
  --init HOW             how each build's init starts: fork (default: forked from this process,
                         as stockade run's), zygote (forked by a zygote process, as the daemon's)
                         or node (a fresh Node, the fallback of both)
  --list                 print the catalogue: ID, property, what it proves
  -h, --help             show this help

exit status: 0 every check passed or does not apply (SKIP), 1 a check failed, 77 a check could
not run on this machine (the reason is printed; never counted as a pass), 2 usage error`;

const OPTIONS = {
  policy: { type: 'string', multiple: true },
  only: { type: 'string' },
  json: { type: 'string' },
  'pool-range': { type: 'string' },
  policies: { type: 'string' },
  list: { type: 'boolean' },
  'via-runner': { type: 'boolean' },
  init: { type: 'string' },
} as const;

const INIT_STARTS = ['fork', 'zygote', 'node'] as const;

function policyFile(name: string, shippedDir: string): string {
  if (existsSync(name)) return name;
  const shipped = join(shippedDir, `${name}.yaml`);
  if (existsSync(shipped)) return shipped;
  throw new UsageError(`no policy file ${name} (nor a shipped policy of that name)`);
}

function poolRange(text: string): { first: number; count: number; gid: number } {
  const m = /^(\d+):(\d+)(?::(\d+))?$/.exec(text);
  if (!m || Number(m[1]) === 0 || Number(m[2]) === 0) throw new UsageError(`--pool-range needs FIRST:COUNT[:GID] with FIRST and COUNT above 0, got '${text}'`);
  return { first: Number(m[1]), count: Number(m[2]), gid: Number(m[3] ?? m[1]) };
}

export async function main(argv: string[]): Promise<number> {
  return command(HELP, async () => {
    const args = parse(argv, OPTIONS, HELP);
    if (!args) return 0;
    const v = args.values;
    if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}' (policies go after --policy)`);
    const { CATALOGUE } = await import('../conformance/catalogue.js');
    if (v.list) {
      const { catalogueMarkdown } = await import('../conformance/doc.js');
      if (v.json) writeOut(v.json, JSON.stringify(CATALOGUE.map(({ id, property, proves, attack, kind }) => ({ id, property, proves, attack, kind })), null, 2));
      else process.stdout.write(catalogueMarkdown());
      return 0;
    }
    const ids = v.only?.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = ids?.filter((id) => !CATALOGUE.some((c) => c.id === id)) ?? [];
    if (unknown.length) throw new UsageError(`unknown check ID: ${unknown.join(', ')} (see --list)`);
    const checks = ids ? CATALOGUE.filter((c) => ids.includes(c.id)) : CATALOGUE;
    const { SHIPPED_POLICIES_DIR } = await import('../policy/load.js');
    const files = v.policy?.length
      ? v.policy.map((p) => policyFile(p, SHIPPED_POLICIES_DIR))
      : readdirSync(SHIPPED_POLICIES_DIR).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(SHIPPED_POLICIES_DIR, f));
    const range = v['pool-range'] !== undefined ? poolRange(v['pool-range']) : undefined;
    const init = v.init ?? 'fork';
    if (!(INIT_STARTS as readonly string[]).includes(init)) throw new UsageError(`--init takes ${INIT_STARTS.join(', ')}, got '${init}'`);
    const { runSuite, exitStatus } = await import('../conformance/suite.js');
    const { useInit } = await import('../conformance/sandbox.js');
    const starter = await useInit(init as (typeof INIT_STARTS)[number]);
    const { tapHeader, tapPolicy, tapResult } = await import('../conformance/tap.js');
    const tap = v.json !== '-';
    let n = 0;
    // Interrupted (Ctrl-C, a closed pipe): kill the build in flight and clean up before leaving.
    const stop = new AbortController();
    const interrupt = (status: number) => () => {
      process.exitCode = status;
      stop.abort();
    };
    process.once('SIGINT', interrupt(130)).once('SIGTERM', interrupt(143));
    process.stdout.on('error', interrupt(141));
    if (tap) process.stdout.write(tapHeader(files.length * checks.length));
    const { results, policies } = await runSuite(files, {
      checks, poolRange: range, policiesDir: v.policies, signal: stop.signal, viaRunner: v['via-runner'],
      onPolicy: (report) => tap && process.stdout.write(tapPolicy(report)),
      onResult: (result) => tap && process.stdout.write(tapResult(++n, result)),
    }).finally(() => starter.close());
    if (stop.signal.aborted) return Number(process.exitCode);
    if (v.json) writeOut(v.json, JSON.stringify({ policies, results }, null, 2));
    const count = (s: string) => results.filter((r) => r.status === s).length;
    if (tap) process.stdout.write(`# ${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped, ${count('cannot-run')} could not run\n`);
    return exitStatus(results);
  });
}

function writeOut(target: string, text: string): void {
  if (target === '-') process.stdout.write(text + '\n');
  else writeFileSync(target, text + '\n');
}
