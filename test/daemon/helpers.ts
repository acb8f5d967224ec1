// A real daemon on a temporary socket for the daemon tests: its own policies directory (a
// policy extending guix-default with a random high range pool), config, state directory, and
// clients that speak the protocol directly or through `stockade submit`.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEvent, type WireEvent } from '../../src/daemon/protocol.js';
import { LineSplitter } from '../../src/runtime/lines.js';
import { CLEAN_ENV as RUNTIME_ENV, CLI, TOOL_INPUTS, leftovers, makePolicy, removeSandbox, type Sandbox } from '../runtime/helpers.js';

export { IS_ROOT, NOT_ROOT_REASON } from '../runtime/helpers.js';

/** Without any of tap's hooks: a client running as another uid cannot write tap's records. */
const CLEAN_ENV = Object.fromEntries(Object.entries(RUNTIME_ENV).filter(([k]) => !/tap/i.test(k)));

/** A uid with no account and outside every pool, for a client that is not root. */
export const OTHER_UID = 2_147_000_000 + randomBytes(2).readUInt16BE(0);

export interface DaemonOptions {
  maxJobs?: number;
  grace?: number;
  /** Extra policy settings (YAML, top level) of the served policy `test`. */
  extra?: string;
  config?: string;
  /** Command words the daemon runs under (setpriv with a bounding set, say). */
  wrap?: string[];
  /** More `stockade daemon` options. */
  args?: string[];
  /** More environment variables of the daemon (a fault-injection knob, say). */
  env?: Record<string, string>;
}

export class TestDaemon {
  readonly sb: Sandbox;
  readonly policies: string;
  readonly socket: string;
  readonly socketDir: string;
  readonly stateDir: string;
  readonly configFile: string;
  child: ChildProcess | undefined;
  log = '';
  private exited: Promise<number | null> | undefined;

  constructor(readonly options: DaemonOptions = {}) {
    this.sb = makePolicy('guix-default', options.extra ?? '');
    this.policies = join(this.sb.dir, 'policies');
    mkdirSync(this.policies);
    renameSync(this.sb.policy, join(this.policies, 'test.yaml'));
    writeFileSync(join(this.policies, 'only-root.yaml'), 'stockade: 1\nname: only-root\nextends: test.yaml\n');
    // Reachable by the other uid: the sandbox's own directory is 0700.
    this.socketDir = mkdtempSync(join(tmpdir(), 'stk-sock-'));
    chmodSync(this.socketDir, 0o755);
    this.socket = join(this.socketDir, 'daemon.sock');
    this.stateDir = join(this.sb.dir, 'daemon-state');
    this.configFile = join(this.sb.dir, 'daemon.yaml');
    writeFileSync(this.configFile, options.config ?? [
      'stockade-daemon: 1',
      'access:',
      '  - policies: [only-root]',
      '    users: [root]',
      '  - policies: [test]',
      '    users: ["*"]',
      '    env: [PATH, MARK]',
      '',
    ].join('\n'));
  }

  get policyFile(): string {
    return join(this.policies, 'test.yaml');
  }

  async start(): Promise<void> {
    const args = [CLI, 'daemon', '--socket', this.socket, '--config', this.configFile, '--policies', this.policies, '--state-dir', this.stateDir,
      '--max-jobs', String(this.options.maxJobs ?? 1), '--grace', String(this.options.grace ?? 30), ...(this.options.args ?? [])];
    const from = this.log.length;
    const [command, ...rest] = [...(this.options.wrap ?? []), process.execPath, ...args];
    const child = spawn(command, rest, { env: { ...CLEAN_ENV, ...this.options.env, STOCKADE_BUILDS_DIR: this.sb.registry }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.log += text));
    await Promise.race([
      this.waitForLog(/listening on /, from),
      this.exited.then((code) => {
        throw new Error(`daemon exited (${code}) before listening:\n${this.log}`);
      }),
    ]);
  }

  /** Resolves when the daemon's log matches, after `from` characters of it. */
  async waitForLog(pattern: RegExp, from = 0, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.log.slice(from));
      if (match) return match[0];
      if (Date.now() > deadline) throw new Error(`daemon log never matched ${pattern}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM and the daemon's exit status. */
  async stop(): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return this.child?.exitCode ?? null;
    this.child.kill('SIGTERM');
    return this.exited!;
  }

  async kill9(): Promise<void> {
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /**
   * What the daemon's builds could leave: the runtime helper's checks, but only cgroups named
   * by this daemon (NAME-PID-START), as other test runs may have builds of their own going.
   */
  leftovers(pids: number[] = [this.child!.pid!]): string[] {
    const found = leftovers(this.sb).filter((line) => !line.startsWith('cgroups under '));
    for (const root of ['/sys/fs/cgroup/pids/stockade', '/sys/fs/cgroup/memory/stockade', '/sys/fs/cgroup/cpu/stockade', '/sys/fs/cgroup/unified/stockade']) {
      const groups = existsSync(root) ? readdirSync(root).filter((name) => pids.some((pid) => name.includes(`-${pid}-`))) : [];
      if (groups.length) found.push(`cgroups under ${root}: ${groups.join(' ')}`);
    }
    return found;
  }

  async remove(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    removeSandbox(this.sb);
    rmSync(this.socketDir, { recursive: true, force: true });
  }

  /** Runs `stockade submit` against this daemon, as root or (uid given) as another user. */
  client(args: string[], uid?: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const argv = [CLI, 'submit', '--socket', this.socket, ...args];
    const [cmd, ...rest] = uid === undefined
      ? [process.execPath, ...argv]
      : ['/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, ...argv];
    return new Promise((resolve) => {
      const child = spawn(cmd, rest, { env: CLEAN_ENV, cwd: '/' });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  connect(): Promise<Connection> {
    return Connection.open(this.socket);
  }
}

export function toolArgs(): string[] {
  return [...TOOL_INPUTS.flatMap((i) => ['--input', i]), '--env', 'PATH=/usr/bin:/bin'];
}

export function shSpec(name: string, script: string, env: Record<string, string> = {}) {
  return { name, builder: '/bin/sh', args: ['-c', script], inputs: TOOL_INPUTS, env: { PATH: '/usr/bin:/bin', ...env } };
}

/** A protocol client: every event received is checked against the schema. */
export class Connection {
  readonly events: WireEvent[] = [];
  closed = false;

  /** Called on every event and on close; event-driven, so that waiting clients cost no CPU. */
  private readonly watchers = new Set<() => void>();

  private constructor(readonly socket: Socket) {
    const events = new LineSplitter((line) => {
      this.events.push(parseEvent(line));
      this.watchers.forEach((watch) => watch());
    });
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => events.push(text));
    socket.on('close', () => {
      this.closed = true;
      this.watchers.forEach((watch) => watch());
    });
  }

  static open(path: string): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new Connection(socket)));
      socket.once('error', reject);
    });
  }

  send(request: object): void {
    this.socket.write(JSON.stringify(request) + '\n');
  }

  build(policy: string, spec: object): void {
    this.send({ version: 1, type: 'build', policy, spec });
  }

  waitFor<T extends WireEvent['type']>(type: T, predicate: (e: Extract<WireEvent, { type: T }>) => boolean = () => true, timeoutMs = 60_000): Promise<Extract<WireEvent, { type: T }>> {
    return new Promise((resolve, reject) => {
      const settle = (outcome: () => void) => {
        clearTimeout(timer);
        this.watchers.delete(watch);
        outcome();
      };
      const watch = () => {
        const found = this.events.find((e) => e.type === type && predicate(e as Extract<WireEvent, { type: T }>));
        if (found) settle(() => resolve(found as Extract<WireEvent, { type: T }>));
        else if (this.closed) settle(() => reject(new Error(`connection closed without a ${type} event; got ${JSON.stringify(this.events)}`)));
      };
      const timer = setTimeout(() => settle(() => reject(new Error(`no ${type} event; got ${JSON.stringify(this.events)}`))), timeoutMs);
      this.watchers.add(watch);
      watch();
    });
  }

  logOf(id: string, stream: 'stdout' | 'stderr' | 'stockade' = 'stdout'): string {
    return this.events.filter((e) => e.type === 'log' && e.id === id && e.stream === stream).map((e) => (e as { text: string }).text).join('');
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The holder record in a UID's lock file (blanked with spaces when released). */
export function lockRecord(d: TestDaemon, uid: number): string {
  try {
    return readFileSync(join(d.sb.stateDir, String(uid)), 'utf8').trim();
  } catch {
    return '';
  }
}
