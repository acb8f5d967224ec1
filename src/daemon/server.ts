// The daemon: accepts clients on a Unix socket, checks each build request against access
// control and its policy, queues it, runs it with the runtime, streams its events, and cleans
// up after itself and after a crashed predecessor.
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { getPeerCred } from '../ffi/libc.js';
import { plan as makePlan } from '../plan/plan.js';
import type { Plan } from '../plan/types.js';
import { supervisorMakesNetns } from '../runtime/net.js';
import { LineSplitter } from '../runtime/lines.js';
import { admit, type BuildRecord } from '../runtime/records.js';
import { runBuild, resolvePath, EXIT, type RunResult } from '../runtime/supervisor.js';
import { decide, describePeer, type Peer } from './access.js';
import type { DaemonConfig } from './config.js';
import { applyDefaults, boundSpec } from './defaults.js';
import { PolicyCache } from './policies.js';
import { encodeEvent, MAX_LINE_BYTES, parseRequest, ProtocolError, type BuildRequest, type CancelRequest, type Event } from './protocol.js';
import { StateDir } from './recovery.js';
import { Scheduler } from './scheduler.js';
import { WarmPool } from './warm.js';

interface Client {
  socket: Socket;
  peer: Peer;
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

const WARM_START_TIMEOUT_MS = 10_000;

export class Daemon {
  private server: Server | undefined;
  private readonly builds = new Map<string, Build>();
  private readonly clients = new Set<Client>();
  private readonly scheduler: Scheduler;
  readonly policies: PolicyCache;
  private readonly state: StateDir;
  private readonly warm: WarmPool;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly config: DaemonConfig,
    private readonly log: Log,
  ) {
    this.scheduler = new Scheduler(config.maxJobs);
    this.policies = new PolicyCache(config.policies, (m) => log(m));
    this.state = new StateDir(config.stateDir);
    this.warm = new WarmPool(config.warmWorkers ?? config.maxJobs, log);
  }

  /** Locks the state directory, cleans after a crashed predecessor, loads policies, listens. */
  async start(): Promise<void> {
    this.state.lock();
    const lines = await this.state.recover();
    for (const line of lines) this.log(`recovery: ${line}`);
    const leftovers = lines.filter((line) => line.startsWith('removed ')).length;
    this.log(`recovery: ${leftovers ? `${leftovers} leftovers of dead builds removed` : 'nothing left by dead builds'}`);
    const count = this.policies.reload();
    this.policies.watch();
    this.log(`policies: serving ${count} from ${this.config.policies}: ${this.policies.names().join(', ') || 'none'}`);
    this.warm.fill();
    // So that the first builds find their init started; a worker that never gets there delays no one long.
    await this.warm.whenReady(WARM_START_TIMEOUT_MS);
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
    await this.warm.close();
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
    for (const client of this.clients) client.socket.destroySoon();
    this.policies.close();
    await closed;
    this.state.unlock();
    this.log('stopped');
  }

  reload(): void {
    this.log(`policies: reloading (SIGHUP)`);
    this.policies.reload();
  }

  private accept(socket: Socket): void {
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
    const client: Client = { socket, peer };
    this.clients.add(client);
    const requests = new LineSplitter((line) => {
      if (line.trim()) this.handle(client, line);
    });
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      requests.push(text);
      if (Buffer.byteLength(requests.pending) > MAX_LINE_BYTES) {
        this.send(client, { type: 'error', code: 'bad-request', message: `request longer than ${MAX_LINE_BYTES} bytes` });
        socket.end();
        requests.discard();
      }
    });
    socket.on('error', () => {
      // A client that vanishes mid-write: 'close' follows and handles it.
    });
    socket.on('close', () => this.disconnected(client));
  }

  private disconnected(client: Client): void {
    this.clients.delete(client);
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
      if (!(err instanceof ProtocolError)) throw err;
      this.send(client, { type: 'error', code: 'bad-request', message: err.message });
      return;
    }
    if (request.type === 'build') void this.submit(client, request);
    else this.cancelRequest(client, request);
  }

  private async submit(client: Client, request: BuildRequest): Promise<void> {
    const { peer } = client;
    const refuse = (code: 'unknown-policy' | 'denied' | 'refused-spec' | 'shutting-down', message: string) => {
      this.log(`refused ${peer.name} (uid ${peer.uid}, pid ${peer.pid}), policy '${request.policy}': ${message}`);
      this.send(client, { type: 'error', code, message });
    };
    if (this.stopping) return refuse('shutting-down', 'the daemon is shutting down');
    const entry = this.policies.get(request.policy);
    if (!entry) return refuse('unknown-policy', `no policy '${request.policy}' is served by this daemon`);
    const decision = decide(this.config.access, peer, request.policy, request.spec);
    if (!decision.allowed) return refuse(decision.code, decision.message);
    let plan: Plan;
    try {
      // environment.pass takes from the daemon's environment, as guix's impureEnvVars do: never the client's.
      const { defaults } = this.config;
      plan = applyDefaults(makePlan(entry.loaded.policy, boundSpec(request.spec, defaults), { file: entry.file, chain: entry.loaded.chain, callerEnv: process.env, specSource: 'build request' }), defaults);
    } catch (err) {
      return refuse('refused-spec', (err as Error).message);
    }
    const id = randomBytes(8).toString('hex');
    let record: BuildRecord;
    try {
      // Queued builds claim their outputs too: admission (as `stockade run`'s) refuses an overlap with any live build.
      record = await admit(plan, plan.build.outputs.map(resolvePath), { id, onRemoved: (line) => this.log(`recovery: ${line}`) });
    } catch (err) {
      return refuse('refused-spec', (err as Error).message);
    }
    if (this.stopping || (client.socket.destroyed && this.config.cancelOnDisconnect)) {
      record.release();
      if (this.stopping) refuse('shutting-down', 'the daemon is shutting down');
      return;
    }
    const build: Build = { id, owner: client, listeners: new Set([client]), plan, policy: request.policy, state: 'queued', controller: new AbortController(), record };
    this.builds.set(id, build);
    this.log(`build ${id}: ${plan.build.name} under '${request.policy}' for ${peer.name} (uid ${peer.uid}, pid ${peer.pid})`);
    this.emit(build, { type: 'accepted', id, policy: request.policy });
    this.scheduler.submit({
      id,
      onPosition: (position) => this.emit(build, { type: 'queued', id, position }),
      run: () => this.run(build),
    });
  }

  private async run(build: Build): Promise<void> {
    const { id } = build;
    build.state = 'running';
    this.emit(build, { type: 'started', id });
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    const log = (stream: 'stdout' | 'stderr' | 'stockade', text: string) => {
      if (text) this.emit(build, { type: 'log', id, stream, time: new Date().toISOString(), text });
    };
    let result: RunResult;
    try {
      // slirp4netns needs the network namespace the supervisor makes with init: those start cold.
      const init = supervisorMakesNetns(build.plan) ? undefined : this.warm.take();
      result = await runBuild(build.plan, {
        init,
        record: build.record,
        onStart: ({ uid, initPid, warm }) => this.log(`build ${id}: running as uid ${uid}, init pid ${initPid} (${warm ? 'warm worker' : 'started cold'})`),
        signal: build.controller.signal,
        poolTimeoutMs: this.config.poolTimeoutSeconds * 1000,
        keepFailed: this.config.defaults.keepFailed,
        onOutput: (stream, chunk) => log(stream, decoders[stream].write(chunk)),
        onNotice: (message) => log('stockade', message + '\n'),
      });
      log('stdout', decoders.stdout.end());
      log('stderr', decoders.stderr.end());
    } catch (err) {
      // runBuild reports its own failures; this is taking a warm worker failing, before it.
      build.record.release();
      result = { outcome: 'setup-failed', exitCode: EXIT.setupFailed, status: null, termSignal: null, message: (err as Error).message, durationMs: 0 };
    }
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
    this.warm.refillSoon();
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
    if (build.state === 'queued' && this.scheduler.withdraw(build.id)) this.finishUnstarted(build, 'build cancelled');
    else build.controller.abort();
  }

  private finishUnstarted(build: Build, message: string): void {
    build.state = 'done';
    build.record.release();
    this.emit(build, { type: 'finished', id: build.id, outcome: 'cancelled', exit_code: EXIT.signalBase + 15, status: null, signal: null, message, duration_ms: 0 });
    this.builds.delete(build.id);
  }

  private emit(build: Build, event: Event): void {
    for (const client of build.listeners) this.send(client, event);
  }

  private send(client: Client, event: Event): void {
    if (!client.socket.destroyed && client.socket.writable) client.socket.write(encodeEvent(event));
  }
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
