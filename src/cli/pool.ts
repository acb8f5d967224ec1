// `stockade pool create | status | check`: manage and inspect the build-user pool.
import { parseArgs } from 'node:util';
import type { Identity, PoolRef } from '../plan/types.js';
import { DEFAULT_STATE_DIR, checkPool, createPool, status } from '../pool/index.js';

const USAGE = `usage: stockade pool SUBCOMMAND [OPTIONS]

subcommands:
  create   create a group of build users (as the Guix manual does)
  status   show each build UID, free or busy, and by what
  check    run the safety checks on a pool; exit 1 if a member is unsafe

Run \`stockade pool SUBCOMMAND --help\` for its options.`;

const CREATE_USAGE = `usage: stockade pool create --group NAME --count N [--first-uid UID] [--prefix PREFIX]

Creates the system group NAME and N system users PREFIX01..PREFIXNN in it, with home
/var/empty, shell nologin and gecos "Guix build user I". PREFIX defaults to NAME + "er"
(guixbuild -> guixbuilder01). Idempotent; refuses to touch accounts it did not create.`;

const SELECT = `  POLICY                   the pool of this policy's Plan (its users: section)
  --group NAME             members of group NAME (through NSS)
  --range FIRST:COUNT:GID  COUNT UIDs from FIRST, with gid GID (no accounts needed)
  --state-dir DIR          lock directory (default: the policy's, or ${DEFAULT_STATE_DIR})`;

const STATUS_USAGE = `usage: stockade pool status (POLICY | --group NAME | --range FIRST:COUNT:GID) [--state-dir DIR]

Shows each build UID of the pool, free or busy, and the build, pid and start time of its holder.
${SELECT}`;

const CHECK_USAGE = `usage: stockade pool check (POLICY | --group NAME | --range FIRST:COUNT:GID)

Prints every refused member (uid or gid 0, login shell, privileged group…) and warnings
(range UIDs that belong to accounts). Exit 1 if the pool would be refused.
${SELECT}`;

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'create':
        return create(rest);
      case 'status':
        return await showStatus(rest);
      case 'check':
        return await check(rest);
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return 0;
      default:
        throw new UsageError(sub === undefined ? 'missing subcommand' : `unknown subcommand '${sub}'`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`stockade pool: ${(err as Error).message}\n\n${usageOf(sub)}\n`);
      return 2;
    }
    process.stderr.write(`stockade pool: ${(err as Error).message}\n`);
    return 1;
  }
}

function usageOf(sub: string | undefined): string {
  return { create: CREATE_USAGE, status: STATUS_USAGE, check: CHECK_USAGE }[sub ?? ''] ?? USAGE;
}

function create(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      group: { type: 'string' },
      count: { type: 'string' },
      'first-uid': { type: 'string' },
      prefix: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(CREATE_USAGE);
  if (!values.group || !values.count) throw new UsageError('--group and --count are required');
  const result = createPool({
    group: values.group,
    count: integer('--count', values.count),
    firstUid: values['first-uid'] === undefined ? undefined : integer('--first-uid', values['first-uid']),
    prefix: values.prefix,
  });
  if (result.actions.length === 0) {
    process.stdout.write(`pool ${values.group}: nothing to change (${result.users.length} build users present)\n`);
  } else {
    for (const action of result.actions) process.stdout.write(`${action}\n`);
  }
  return 0;
}

const SELECT_OPTIONS = {
  group: { type: 'string' },
  range: { type: 'string' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function showStatus(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: SELECT_OPTIONS, allowPositionals: true });
  if (values.help) return help(STATUS_USAGE);
  const report = status(await selectIdentity(values, positionals));
  const busy = report.uids.filter((u) => u.busy).length;
  process.stdout.write(`${report.label}: ${busy} of ${report.uids.length} busy\n`);
  for (const entry of report.uids) {
    const who = entry.userName ? ` ${entry.userName}` : '';
    const what = !entry.busy
      ? 'free'
      : entry.holder
        ? `busy  build ${entry.holder.build}  pid ${entry.holder.pid}  since ${entry.holder.since}`
        : 'busy  (holder still cleaning the UID)';
    process.stdout.write(`  uid ${entry.uid}${who}  ${what}\n`);
  }
  for (const refusal of report.refusals) process.stdout.write(`${refusal}\n`);
  return 0;
}

async function check(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: SELECT_OPTIONS, allowPositionals: true });
  if (values.help) return help(CHECK_USAGE);
  const identity = await selectIdentity(values, positionals);
  const findings = checkPool(identity);
  // Refusal messages already say `refused`.
  for (const f of findings) process.stdout.write(`${f.level === 'warning' ? 'warning: ' : ''}${f.message}\n`);
  const refused = findings.some((f) => f.level === 'refused');
  if (findings.length === 0) process.stdout.write('pool is safe\n');
  return refused ? 1 : 0;
}

function help(text: string): number {
  process.stdout.write(text + '\n');
  return 0;
}

function integer(option: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${option} must be a non-negative integer, not '${text}'`);
  return Number(text);
}

/** The Identity the pool commands act on: a policy's, or one from --group/--range. */
async function selectIdentity(
  values: { group?: string; range?: string; 'state-dir'?: string },
  positionals: string[],
): Promise<Identity> {
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const selectors = positionals.length + Number(values.group !== undefined) + Number(values.range !== undefined);
  if (selectors !== 1) throw new UsageError('give exactly one of POLICY, --group or --range');
  if (positionals.length === 1) {
    // Loaded only here: the policy machinery is not needed for --group/--range or create.
    const { planFromFile } = await import('../plan/index.js');
    const identity = planFromFile(positionals[0]).identity;
    return { ...identity, stateDir: values['state-dir'] ?? identity.stateDir };
  }
  return {
    pool: values.group !== undefined ? { kind: 'group', group: values.group } : parseRange(values.range ?? ''),
    stateDir: values['state-dir'] ?? DEFAULT_STATE_DIR,
    // Only pool and stateDir matter to these commands; the sandbox's passwd entry does not.
    passwd: { name: 'nixbld', gecos: 'Nix build user', home: '/', shell: '/noshell' },
    groupName: 'nixbld',
    supplementaryGroups: values.group !== undefined ? 'pool' : 'none',
  };
}

function parseRange(text: string): PoolRef {
  const match = /^(\d+):(\d+):(\d+)$/.exec(text);
  if (!match) throw new UsageError(`--range must be FIRST:COUNT:GID, not '${text}'`);
  return { kind: 'range', first: Number(match[1]), count: Number(match[2]), gid: Number(match[3]) };
}
