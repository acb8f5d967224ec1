// The daemon: accepts clients on a Unix socket, checks each build request against access
// control and its policy, queues it, runs it with the runtime, streams its events, and cleans
// up after itself and after a crashed predecessor. Every client is hostile: nothing it sends
// ends worse than a bad-request, a failure on one build's path is logged with its id and ends
// that build only, and what a client costs is bounded (connections, queued and running builds
// per uid, unread events per connection, an idle timeout).
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { getPeerCred } from '../ffi/libc.js';
import { nativeSeccompArch } from '../ffi/arch.js';
import { plan as makePlan } from '../plan/plan.js';
import type { Plan } from '../plan/types.js';
import { supervisorMakesNetns } from '../runtime/net.js';
import { admit, type BuildRecord } from '../runtime/records.js';
import { runBuild, EXIT, type RunResult } from '../runtime/supervisor.js';
import { resolvePath } from '../runtime/paths.js';
import { decide, describePeer, type Peer } from './access.js';
import type { DaemonConfig } from './config.js';
import { applyDefaults, boundSpec } from './defaults.js';
import { PolicyCache } from './policies.js';
import { BuildLogs } from './logs.js';
import { encodeEvent, MAX_LINE_BYTES, parseRequest, ProtocolError, type BuildRequest, type CancelRequest, type ErrorCode, type Event } from './protocol.js';
import { StateDir } from './recovery.js';
import { Scheduler, type Job } from './scheduler.js';
import { ZygotePool } from './zygotes.js';
import type { Zygote } from '../runtime/zygote-client.js';

interface Client {
  socket: Socket;
  peer: Peer;
  /** The request line received so far, without its newline yet. */
  partial: string[];
  partialBytes: number;
  /** Builds this connection submitted that have not finished. */
  owned: number;
  idleTimer: NodeJS.Timeout | undefined;
}

interface Build {
  id: string;
  owner: Client;
  /** Connections that hear this build's events: its submitter, and whoever asked to cancel it. */
  listeners: Set<Client>;
  plan: Plan;
  policy: string;
  state: 'queued' | 'running' | 'done';
  controller: AbortController;
  /** Its claim on its outputs, from admission on; runBuild releases it once the build has run. */
  record: BuildRecord;
}

export type Log = (message: string) => void;

const ZYGOTE_START_TIMEOUT_MS = 10_000;
/**
 * Unread events a connection may hold before what feeds it waits: the output of its builds is
 * no longer read (the builder blocks on write; its log file misses nothing), its own requests
 * are no longer read.
 */
export const CLIENT_BUFFER_BYTES = 1 << 20;
/** Past this a connection is closed: only a client that never reads and keeps asking gets here. */
const CLIENT_BUFFER_MAX_BYTES = 16 << 20;

export class Daemon {
  private server: Server | undefined;
  private readonly builds = new Map<string, Build>();
  /** Builds between their checks and the scheduler (admission awaits the registry), by uid: they count as queued. */
  private readonly admitting = new Map<number, number>();
  private readonly clients = new Set<Client>();
  private readonly connectionsPerUid = new Map<number, number>();
  private readonly buildLogs: BuildLogs;
  private readonly scheduler: Scheduler;
  readonly policies: PolicyCache;
  private readonly state: StateDir;
  private readonly zygotes: ZygotePool;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly config: DaemonConfig,
    private readonly log: Log,
  ) {
    this.scheduler = new Scheduler({
      maxJobs: config.maxJobs,
      maxRunningPerOwner: Math.min(config.maxRunningPerUser ?? config.maxJobs, config.maxJobs),
      onError: (job, err) => this.jobFailed(job, err),
    });
    this.buildLogs = new BuildLogs(config.stateDir, { maxBytes: config.maxLogSize, kept: config.logsKept }, log);
    this.policies = new PolicyCache(config.policies, (m) => log(m));
    this.state = new StateDir(config.stateDir);
    this.zygotes = new ZygotePool(config.zygotes ?? config.maxJobs, log);
  }

  /** Locks the state directory, cleans after a crashed predecessor, loads policies, listens. */
  async start(): Promise<void> {
    this.state.lock();
    const lines = await this.state.recover();
    for (const line of lines) this.log(`recovery: ${line}`);
    const leftovers = lines.filter((line) => line.startsWith('removed ')).length;
    this.log(`recovery: ${leftovers ? `${leftovers} leftovers of dead builds removed` : 'nothing left by dead builds'}`);
    this.buildLogs.open();
    const count = this.policies.reload();
    this.policies.watch();
    this.log(`policies: serving ${count} from ${this.config.policies}: ${this.policies.names().join(', ') || 'none'}`);
    // So that the first builds find their zygote ready; one that never gets there delays no one long.
    await this.zygotes.start(ZYGOTE_START_TIMEOUT_MS);
    await this.listen();
    this.log(`listening on ${this.config.socket} (max ${this.config.maxJobs} jobs)`);
  }

  private async listen(): Promise<void> {
    const path = this.config.socket;
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    await removeStaleSocket(path);
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(path, this.config.socketMode);
    this.server = server;
  }

  /** SIGTERM: stop accepting, let running builds finish within the grace period, then cancel them. */
  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    this.log(`shutting down: ${this.scheduler.runningCount} running builds get ${this.config.shutdownGraceSeconds}s to finish`);
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    // Only our own socket: a start that failed may have found another daemon's there.
    if (this.server) unlinkQuietly(this.config.socket);
    for (const job of this.scheduler.drain()) {
      const build = this.builds.get(job.id)!;
      this.finishUnstarted(build, 'the daemon shut down before the build started');
    }
    const grace = setTimeout(() => {
      for (const build of this.builds.values()) {
        if (build.state === 'running') {
          this.log(`build ${build.id}: grace period over, cancelling`);
          build.controller.abort();
        }
      }
    }, this.config.shutdownGraceSeconds * 1000);
    await this.scheduler.idle();
    clearTimeout(grace);
    // Only now: a zygote's inits die with it.
    await this.zygotes.close();
    for (const client of this.clients) client.socket.destroySoon();
    this.policies.close();
    await closed;
    this.buildLogs.close();
    this.state.unlock();
    this.log('stopped');
  }

  reload(): void {
    this.log(`policies: reloading (SIGHUP)`);
    this.policies.reload();
  }

  private accept(socket: Socket): void {
    socket.on('error', () => {
      // A client that vanishes mid-write: 'close' follows and handles it.
    });
    let peer: Peer;
    try {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) throw new Error('the connection has no file descriptor');
      peer = describePeer(getPeerCred(fd));
    } catch (err) {
      this.log(`refusing a connection: cannot read its credentials: ${(err as Error).message}`);
      socket.destroy();
      return;
    }
    const client: Client = { socket, peer, partial: [], partialBytes: 0, owned: 0, idleTimer: undefined };
    const ofUid = this.connectionsPerUid.get(peer.uid) ?? 0;
    const full = this.clients.size >= this.config.maxConnections
      ? `the daemon has ${this.clients.size} connections open (max_connections)`
      : ofUid >= this.config.maxConnectionsPerUser ? `uid ${peer.uid} has ${ofUid} connections open (max_connections_per_user)` : undefined;
    if (full) {
      this.log(`refusing a connection of ${describe(peer)}: ${full}`);
      this.closeWith(client, 'limit-reached', full);
      return;
    }
    this.clients.add(client);
    this.connectionsPerUid.set(peer.uid, ofUid + 1);
    this.armIdle(client);
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      try {
        this.received(client, text);
      } catch (err) {
        this.log(`connection of ${describe(peer)}: ${(err as Error).stack ?? String(err)}`);
        this.closeWith(client, 'bad-request', 'the daemon could not handle what this connection sent (logged)');
      }
    });
    socket.on('close', () => this.disconnected(client));
  }

  /** Hands each complete line on; a newline is looked for in the new text only, so a line sent in many pieces costs its length once. */
  private received(client: Client, text: string): void {
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      const line = client.partial.length ? client.partial.join('') + text.slice(from, nl) : text.slice(from, nl);
      client.partial = [];
      client.partialBytes = 0;
      from = nl + 1;
      this.armIdle(client);
      if (line.trim()) this.handle(client, line);
      if (client.socket.destroyed || !client.socket.writable) return;
    }
    const rest = text.slice(from);
    if (rest) {
      client.partialBytes += Buffer.byteLength(rest);
      if (client.partialBytes > MAX_LINE_BYTES) {
        client.partial = [];
        this.closeWith(client, 'bad-request', `request longer than ${MAX_LINE_BYTES} bytes`);
        return;
      }
      client.partial.push(rest);
    }
    // A client that sends without reading the answers: read its next request once it has read these.
    if (client.socket.writableLength > CLIENT_BUFFER_BYTES && !client.socket.isPaused()) {
      client.socket.pause();
      client.socket.once('drain', () => client.socket.resume());
    }
  }

  /** A connection with no build of its own must complete a request line within idle_timeout, and again after each. */
  private armIdle(client: Client): void {
    clearTimeout(client.idleTimer);
    client.idleTimer = undefined;
    if (client.owned > 0 || client.socket.destroyed) return;
    client.idleTimer = setTimeout(() => {
      this.log(`closing an idle connection of ${describe(client.peer)}: no request in ${this.config.idleTimeoutSeconds}s`);
      this.closeWith(client, 'idle-timeout', `no complete request in ${this.config.idleTimeoutSeconds} seconds (idle_timeout)`);
    }, this.config.idleTimeoutSeconds * 1000);
  }

  /** Sends an error and closes, without waiting for a client that does not read. */
  private closeWith(client: Client, code: ErrorCode, message: string): void {
    this.send(client, { type: 'error', code, message });
    client.socket.end();
    client.socket.pause();
    const close = setTimeout(() => client.socket.destroy(), 1000);
    client.socket.once('close', () => clearTimeout(close));
  }

  private disconnected(client: Client): void {
    clearTimeout(client.idleTimer);
    if (!this.clients.delete(client)) return;
    const left = (this.connectionsPerUid.get(client.peer.uid) ?? 1) - 1;
    if (left > 0) this.connectionsPerUid.set(client.peer.uid, left);
    else this.connectionsPerUid.delete(client.peer.uid);
    for (const build of this.builds.values()) {
      build.listeners.delete(client);
      if (build.owner === client && build.state !== 'done' && this.config.cancelOnDisconnect) {
        this.log(`build ${build.id}: client disconnected, cancelling`);
        this.cancel(build);
      }
    }
  }

  private handle(client: Client, line: string): void {
    let request;
    try {
      request = parseRequest(line);
    } catch (err) {
      if (!(err instanceof ProtocolError)) this.log(`request of ${describe(client.peer)}: ${(err as Error).stack ?? String(err)}`);
      const message = err instanceof ProtocolError ? err.message : 'the daemon could not read this request (logged)';
      this.send(client, { type: 'error', code: 'bad-request', message });
      return;
    }
    const failed = (err: unknown) => {
      this.log(`${request.type} request of ${describe(client.peer)}: ${(err as Error).stack ?? String(err)}`);
      this.send(client, { type: 'error', code: 'bad-request', message: `the daemon failed to handle this ${request.type} request (logged)` });
    };
    try {
      if (request.type === 'build') this.submit(client, request).catch(failed);
      else this.cancelRequest(client, request);
    } catch (err) {
      failed(err);
    }
  }

  private async submit(client: Client, request: BuildRequest): Promise<void> {
    const { peer } = client;
    const refuse = (code: 'unknown-policy' | 'denied' | 'refused-spec' | 'shutting-down' | 'limit-reached', message: string) => {
      this.log(`refused ${peer.name} (uid ${peer.uid}, pid ${peer.pid}), policy '${request.policy}': ${message}`);
      this.send(client, { type: 'error', code, message });
    };
    if (this.stopping) return refuse('shutting-down', 'the daemon is shutting down');
    const entry = this.policies.get(request.policy);
    if (!entry) return refuse('unknown-policy', `no policy '${request.policy}' is served by this daemon`);
    const decision = decide(this.config.access, peer, request.policy, request.spec);
    if (!decision.allowed) return refuse(decision.code, decision.message);
    const queued = this.scheduler.queuedOf(peer.uid) + (this.admitting.get(peer.uid) ?? 0);
    if (queued >= this.config.maxQueuedPerUser && (this.admitting.has(peer.uid) || this.scheduler.wouldWait(peer.uid))) {
      return refuse('limit-reached', `uid ${peer.uid} has ${queued} builds waiting (max_queued_per_user ${this.config.maxQueuedPerUser})`);
    }
    let plan: Plan;
    try {
      // environment.pass takes from the daemon's environment, as guix's impureEnvVars do: never the client's.
      const { defaults } = this.config;
      plan = applyDefaults(makePlan(entry.loaded, boundSpec(request.spec, defaults), { callerEnv: process.env, specSource: 'build request', nativeArch: nativeSeccompArch() }), defaults);
    } catch (err) {
      return refuse('refused-spec', (err as Error).message);
    }
    const id = randomBytes(8).toString('hex');
    let record: BuildRecord;
    this.admitting.set(peer.uid, (this.admitting.get(peer.uid) ?? 0) + 1);
    try {
      // Queued builds claim their outputs too: admission (as `stockade run`'s) refuses an overlap with any live build.
      record = await admit(plan, plan.build.outputs.map(resolvePath), { id, onRemoved: (line) => this.log(`recovery: ${line}`) });
    } catch (err) {
      return refuse('refused-spec', (err as Error).message);
    } finally {
      const left = this.admitting.get(peer.uid)! - 1;
      if (left) this.admitting.set(peer.uid, left);
      else this.admitting.delete(peer.uid);
    }
    if (this.stopping || (client.socket.destroyed && this.config.cancelOnDisconnect)) {
      record.release();
      if (this.stopping) refuse('shutting-down', 'the daemon is shutting down');
      return;
    }
    const build: Build = { id, owner: client, listeners: new Set([client]), plan, policy: request.policy, state: 'queued', controller: new AbortController(), record };
    this.builds.set(id, build);
    client.owned++;
    this.armIdle(client);
    this.log(`build ${id}: ${plan.build.name} under '${request.policy}' for ${peer.name} (uid ${peer.uid}, pid ${peer.pid})`);
    this.emit(build, { type: 'accepted', id, policy: request.policy });
    this.scheduler.submit({
      id,
      owner: peer.uid,
      onPosition: (position) => this.emit(build, { type: 'queued', id, position }),
      run: () => this.run(build),
    });
  }

  private async run(build: Build): Promise<void> {
    const { id } = build;
    build.state = 'running';
    this.emit(build, { type: 'started', id });
    const file = this.buildLogs.create(id);
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    const log = (stream: 'stdout' | 'stderr' | 'stockade', text: string) => {
      if (text) this.emit(build, { type: 'log', id, stream, time: new Date().toISOString(), text });
    };
    const notice = (message: string) => {
      file.write(`stockade: ${message}\n`);
      log('stockade', message + '\n');
    };
    let result: RunResult;
    // slirp4netns needs the network namespace the supervisor makes with init: those start a fresh Node.
    const zygote: Zygote | undefined = supervisorMakesNetns(build.plan) ? undefined : this.zygotes.take();
    try {
      result = await runBuild(build.plan, {
        zygote,
        record: build.record,
        onStart: ({ uid, initPid, forked }) => this.log(`build ${id}: running as uid ${uid}, init pid ${initPid} (${forked ? `forked by zygote pid ${zygote!.process.pid}` : 'fresh Node'})${file.path ? `, log ${file.path}` : ''}`),
        signal: build.controller.signal,
        poolTimeoutMs: this.config.poolTimeoutSeconds * 1000,
        keepFailed: this.config.defaults.keepFailed,
        onOutput: (stream, chunk) => {
          if (file.write(chunk)) log('stockade', `the build's log file stops at ${this.config.maxLogSize} bytes (max_log_size); the stream goes on\n`);
          log(stream, decoders[stream].write(chunk));
          return this.unread(build);
        },
        onNotice: notice,
      });
      log('stdout', decoders.stdout.end());
      log('stderr', decoders.stderr.end());
    } catch (err) {
      // runBuild reports its own failures: this is a daemon bug.
      build.record.release();
      result = { outcome: 'setup-failed', exitCode: EXIT.setupFailed, status: null, termSignal: null, message: (err as Error).message, durationMs: 0 };
    } finally {
      file.close();
      if (zygote) this.zygotes.give(zygote);
    }
    this.finish(build, result);
  }

  /** While a listener holds too much unread, a promise of its reading it (or leaving): the build's output waits. */
  private unread(build: Build): Promise<void> | undefined {
    const full = [...build.listeners].filter((c) => !c.socket.destroyed && c.socket.writableLength > CLIENT_BUFFER_BYTES);
    if (!full.length) return undefined;
    return Promise.all(full.map((client) => new Promise<void>((resolve) => {
      const done = () => {
        client.socket.off('drain', done).off('close', done);
        resolve();
      };
      client.socket.on('drain', done).on('close', done);
    }))).then(() => undefined);
  }

  private finish(build: Build, result: RunResult): void {
    const { id } = build;
    build.state = 'done';
    this.log(`build ${id}: ${result.outcome} (exit ${result.exitCode}${result.uid !== undefined ? `, uid ${result.uid}` : ''}, ${result.durationMs} ms)${result.message ? `: ${result.message}` : ''}${result.keptBuildDir ? `; build directory kept at ${result.keptBuildDir} (--keep-failed)` : ''}`);
    this.emit(build, {
      type: 'finished', id, outcome: result.outcome, exit_code: result.exitCode, status: result.status, signal: result.termSignal,
      ...(result.message !== undefined && { message: result.message }),
      ...(result.uid !== undefined && { uid: result.uid }),
      duration_ms: Math.max(0, Math.round(result.durationMs)),
      ...(result.peakMemoryBytes !== undefined && { peak_memory_bytes: result.peakMemoryBytes }),
      ...(result.handOver && { hand_over: { outputs: result.handOver.outputs, stripped: result.handOver.stripped, xattrs_dropped: result.handOver.xattrsDropped } }),
    });
    this.builds.delete(id);
    const owner = build.owner;
    owner.owned--;
    if (this.clients.has(owner)) this.armIdle(owner);
  }

  /** A build's run failed outside runBuild's own reporting (a daemon bug): that build ends, the daemon goes on. */
  private jobFailed(job: Job, err: unknown): void {
    this.log(`build ${job.id}: internal error: ${(err as Error)?.stack ?? String(err)}`);
    const build = this.builds.get(job.id);
    if (build && build.state !== 'done') {
      build.controller.abort();
      this.finish(build, { outcome: 'setup-failed', exitCode: EXIT.setupFailed, status: null, termSignal: null, message: `internal error in the daemon: ${(err as Error)?.message ?? String(err)}`, durationMs: 0 });
    }
  }

  private cancelRequest(client: Client, request: CancelRequest): void {
    const build = this.builds.get(request.id);
    // Someone else's build is reported as unknown: ids are not for others to probe.
    if (!build || (build.owner.peer.uid !== client.peer.uid && client.peer.uid !== 0)) {
      this.send(client, { type: 'error', id: request.id, code: 'unknown-build', message: `no build ${request.id} of yours is queued or running` });
      return;
    }
    this.log(`build ${build.id}: cancelled by ${client.peer.name} (uid ${client.peer.uid})`);
    build.listeners.add(client);
    this.cancel(build);
  }

  private cancel(build: Build): void {
    if (build.state === 'queued' && this.scheduler.withdraw(build.id, build.owner.peer.uid)) this.finishUnstarted(build, 'build cancelled');
    else build.controller.abort();
  }

  private finishUnstarted(build: Build, message: string): void {
    build.record.release();
    this.finish(build, { outcome: 'cancelled', exitCode: EXIT.signalBase + 15, status: null, termSignal: null, message, durationMs: 0 });
  }

  private emit(build: Build, event: Event): void {
    const line = this.encode(event);
    if (line !== undefined) for (const client of build.listeners) this.write(client, line);
  }

  private send(client: Client, event: Event): void {
    const line = this.encode(event);
    if (line !== undefined) this.write(client, line);
  }

  /** An event that fails its schema is a daemon bug: logged with its build, not sent, and nobody's crash. */
  private encode(event: Event): string | undefined {
    try {
      return encodeEvent(event);
    } catch (err) {
      this.log(`${'id' in event && event.id ? `build ${event.id}: ` : ''}${event.type} event not sent: ${(err as Error).message}`);
      return undefined;
    }
  }

  private write(client: Client, line: string): void {
    const { socket } = client;
    if (socket.destroyed || !socket.writable) return;
    if (socket.writableLength > CLIENT_BUFFER_MAX_BYTES) {
      this.log(`closing a connection of ${describe(client.peer)}: it left ${socket.writableLength} bytes unread`);
      socket.destroy();
      return;
    }
    socket.write(line);
  }
}

function describe(peer: Peer): string {
  return `${peer.name} (uid ${peer.uid}, pid ${peer.pid})`;
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}

/** A socket file nobody listens on is a crashed daemon's; one that answers is a running daemon's. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const answered = await new Promise<boolean>((resolve) => {
    const probe = connect(path, () => {
      probe.destroy();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
  });
  if (answered) throw new Error(`another daemon is listening on ${path}`);
  unlinkSync(path);
}
