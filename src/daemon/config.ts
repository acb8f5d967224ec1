// The daemon's configuration file: YAML with positions, checked against
// schemas/daemon-config.schema.json; users and groups resolved to ids at load time so a typo
// is an error at start, not a silent refusal later.
import { validateDaemonConfig } from './schema-validator.generated.js';
import type { StockadeDaemonConfiguration as RawConfig } from './config-types.generated.js';
import { PolicyError, type Diagnostic } from '../policy/errors.js';
import { sortDiagnostics } from '../policy/load.js';
import { pointerJoin, readSourceFile } from '../policy/source.js';
import { validatorDiagnostics } from '../policy/validate.js';
import { getgrnam, getpwnam } from '../ffi/nss.js';
import { NO_DEFAULTS, type DaemonDefaults } from './defaults.js';

export interface AccessRule {
  /** Policy names, or ['*']. */
  policies: string[];
  /** uids, or 'any'. */
  uids: number[] | 'any';
  gids: number[];
  env?: string[];
  inputsUnder?: string[];
  /** May hold {user} and {uid}, each a whole path component, substituted per client. */
  outputsUnder?: string[];
  /** Where the rule is written, for messages. */
  where: string;
}

export interface DaemonConfig {
  socket: string;
  socketMode: number;
  policies: string;
  stateDir: string;
  maxJobs: number;
  cancelOnDisconnect: boolean;
  shutdownGraceSeconds: number;
  poolTimeoutSeconds: number;
  access: AccessRule[];
  /** A user's builds running at once (undefined: maxJobs). */
  maxRunningPerUser?: number;
  /** A user's builds waiting for a slot; one more is refused. */
  maxQueuedPerUser: number;
  /** Client connections at once, all users together, and of one user. */
  maxConnections: number;
  maxConnectionsPerUser: number;
  /** Seconds a connection with no build of its own may go without a complete request line. */
  idleTimeoutSeconds: number;
  /** Bytes kept of each build's log file (0: no log files), and how many files are kept. */
  maxLogSize: number;
  logsKept: number;
  /** Zygote processes forking builds' inits, one per job slot (undefined: as many as maxJobs; 0: every init a fresh Node). */
  zygotes?: number;
  /** guix-daemon's build options (command line only). */
  defaults: DaemonDefaults;
}

/** Without a config file only root may build: access for others has to be granted. */
export const DEFAULT_CONFIG: DaemonConfig = {
  socket: '/run/stockade/daemon.sock',
  socketMode: 0o666,
  policies: '/etc/stockade/policies',
  stateDir: '/var/lib/stockade/daemon',
  maxJobs: 1,
  cancelOnDisconnect: true,
  shutdownGraceSeconds: 30,
  poolTimeoutSeconds: 3600,
  access: [{ policies: ['*'], uids: [0], gids: [], where: 'built-in default (root only)' }],
  maxQueuedPerUser: 16,
  maxConnections: 256,
  maxConnectionsPerUser: 16,
  idleTimeoutSeconds: 30,
  maxLogSize: 64 << 20,
  logsKept: 1000,
  defaults: NO_DEFAULTS,
};

/** What outputs_under substitutes: the client's user name and uid. */
export const PLACEHOLDER = /\{(?:user|uid)\}/g;

/**
 * Why a prefix of inputs_under or outputs_under cannot be used, if it cannot. A placeholder must
 * be a whole component: `/out/{user}{uid}` would give user a1 (uid 23) and user a12 (uid 3) the same.
 */
function prefixProblem(prefix: string, placeholders: boolean): string | undefined {
  const components = prefix.split('/').filter(Boolean);
  if (components.some((c) => c === '.' || c === '..')) return `'.' and '..' are not allowed in a prefix`;
  for (const component of components) {
    const count = component.match(PLACEHOLDER)?.length ?? 0;
    if (!placeholders) {
      if (count) return `{user} and {uid} are substituted in outputs_under only`;
    } else if (/[{}]/.test(component.replace(PLACEHOLDER, ''))) {
      return `unknown placeholder in '${component}' (outputs_under knows {user} and {uid})`;
    } else if (count && !/^\{(?:user|uid)\}$/.test(component)) {
      return `a placeholder must be a whole path component, got '${component}'`;
    }
  }
  return undefined;
}

export function loadDaemonConfig(file: string): DaemonConfig {
  const { doc, locate } = readSourceFile(file, 'daemon config');
  const schemaErrors = validatorDiagnostics(validateDaemonConfig as any, doc.value, locate);
  if (schemaErrors.length) throw new PolicyError(sortDiagnostics(schemaErrors));
  const raw = doc.value as unknown as RawConfig; // the schema check above vouches for the shape
  const errors: Diagnostic[] = [];
  const access = (raw.access ?? []).map((rule, index): AccessRule => {
    const at = pointerJoin('/access', index);
    const ids = (key: 'users' | 'groups', lookup: (name: string) => number | undefined): number[] | 'any' =>
      (rule[key] ?? []).includes('*')
        ? 'any'
        : (rule[key] ?? []).flatMap((entry, i) => {
            if (typeof entry === 'number') return [entry];
            const id = /^\d+$/.test(entry) ? Number(entry) : lookup(entry);
            if (id === undefined) errors.push({ ...locate(pointerJoin(pointerJoin(at, key), i)), message: `access[${index}].${key}: no ${key === 'users' ? 'user' : 'group'} named '${entry}'` });
            return id === undefined ? [] : [id];
          });
    const uids = ids('users', (name) => getpwnam(name)?.uid);
    const gids = ids('groups', (name) => getgrnam(name)?.gid);
    for (const key of ['inputs_under', 'outputs_under'] as const) {
      (rule[key] ?? []).forEach((prefix, i) => {
        const problem = prefixProblem(prefix, key === 'outputs_under');
        if (problem) errors.push({ ...locate(pointerJoin(pointerJoin(at, key), i)), message: `access[${index}].${key}: ${prefix}: ${problem}` });
      });
    }
    if (gids === 'any') errors.push({ ...locate(pointerJoin(at, 'groups')), message: `access[${index}].groups: '*' is not allowed, use users: ['*']` });
    const pos = locate(at);
    return {
      policies: rule.policies, uids, gids: gids === 'any' ? [] : gids,
      env: rule.env, inputsUnder: rule.inputs_under, outputsUnder: rule.outputs_under,
      where: `${pos.file}:${pos.line}:${pos.col}`,
    };
  });
  if (errors.length) throw new PolicyError(sortDiagnostics(errors));
  const d = DEFAULT_CONFIG;
  const {
    'stockade-daemon': _version, socket, socket_mode, policies, state_dir, max_jobs, cancel_on_disconnect, shutdown_grace, pool_timeout,
    max_running_per_user, max_queued_per_user, max_connections, max_connections_per_user, idle_timeout, max_log_size, logs_kept,
    access: _rules, ...unread
  } = raw;
  // A key the schema gains has to be read above: the compiler refuses one left over here.
  unread satisfies Record<string, never>;
  return {
    socket: socket ?? d.socket,
    socketMode: socket_mode !== undefined ? parseInt(socket_mode, 8) : d.socketMode,
    policies: policies ?? d.policies,
    stateDir: state_dir ?? d.stateDir,
    maxJobs: max_jobs ?? d.maxJobs,
    cancelOnDisconnect: cancel_on_disconnect ?? d.cancelOnDisconnect,
    shutdownGraceSeconds: shutdown_grace ?? d.shutdownGraceSeconds,
    poolTimeoutSeconds: pool_timeout ?? d.poolTimeoutSeconds,
    access: raw.access ? access : d.access,
    maxRunningPerUser: max_running_per_user,
    maxQueuedPerUser: max_queued_per_user ?? d.maxQueuedPerUser,
    maxConnections: max_connections ?? d.maxConnections,
    maxConnectionsPerUser: max_connections_per_user ?? d.maxConnectionsPerUser,
    idleTimeoutSeconds: idle_timeout ?? d.idleTimeoutSeconds,
    maxLogSize: max_log_size ?? d.maxLogSize,
    logsKept: logs_kept ?? d.logsKept,
    defaults: d.defaults,
  };
}
