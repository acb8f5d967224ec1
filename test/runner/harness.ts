// A fake bb_worker, written against proto/: lays out a build directory as bb_worker does (an
// input root of read-only files in directories, a temporary directory, a server logs
// directory), starts `stockade runner` on a socket and calls it over gRPC.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { processesOf } from '../../src/pool/reap.js';
import { ensureBuilt } from '../helpers/child.js';
import { CLEAN_ENV, CLI, ROOT } from '../runtime/helpers.js';

ensureBuilt();

export const PROTO_DIR = join(ROOT, 'proto');

export interface RunRequest {
  arguments: string[];
  environment_variables?: Record<string, string>;
  working_directory?: string;
  stdout_path?: string;
  stderr_path?: string;
  input_root_directory?: string;
  temporary_directory?: string;
  server_logs_directory?: string;
}

export interface Usage {
  user_time?: { seconds: number; nanos: number };
  system_time?: { seconds: number; nanos: number };
  maximum_resident_set_size?: number;
  termination_signal?: string;
}

export interface RunResponse {
  exit_code: number;
  resource_usage: { type_url: string; value: Buffer }[];
}

type Unary<Req, Res> = (request: Req, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response: Res) => void) => grpc.ClientUnaryCall;
export interface RunnerClient extends grpc.Client {
  CheckReadiness: Unary<{ path: string }, object>;
  Run: Unary<RunRequest, RunResponse>;
}

function clientConstructor(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync('buildbarn/runner/runner.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, defaults: true });
  return (grpc.loadPackageDefinition(definition) as any).buildbarn.runner.Runner;
}

let usageType: protobuf.Type | undefined;
/** The POSIXResourceUsage in a response, decoded from its Any. */
/** Polls until `check` holds or `ms` pass; returns its last value. */
export async function eventually<T>(check: () => T, ok: (value: T) => boolean, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  let value = check();
  while (!ok(value) && Date.now() < until) {
    await sleep(100);
    value = check();
  }
  return value;
}

export function usageOf(response: RunResponse): Usage {
  if (!usageType) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target));
    root.loadSync('buildbarn/resourceusage/resourceusage.proto', { keepCase: true });
    usageType = root.lookupType('buildbarn.resourceusage.POSIXResourceUsage');
  }
  const any = response.resource_usage.find((a) => a.type_url === 'type.googleapis.com/buildbarn.resourceusage.POSIXResourceUsage');
  if (!any) throw new Error(`no POSIXResourceUsage in ${JSON.stringify(response.resource_usage.map((a) => a.type_url))}`);
  return usageType.toObject(usageType.decode(any.value), { longs: Number }) as Usage;
}

let nextUid = 2_100_000_000 + randomBytes(3).readUIntBE(0, 3) * 64;

export interface Worker {
  /** Holds everything the test made; removed by stop(). */
  dir: string;
  buildDirectory: string;
  socket: string;
  policy: string;
  firstUid: number;
  count: number;
  runner: ChildProcess;
  client: RunnerClient;
  stderr(): string;
  /** Lays out action `id`: root/ (files given as path → content, executables when the content starts with #!), tmp/, logs/. */
  layOut(id: string, files?: Record<string, string>, dirs?: string[]): { request: RunRequest; root: string; dir: string };
  run(request: RunRequest, options?: grpc.CallOptions): Promise<RunResponse>;
  call(request: RunRequest, options?: grpc.CallOptions): { call: grpc.ClientUnaryCall; done: Promise<RunResponse> };
  /** What the runner left of its builds: mounts, processes of the pool, cgroups. */
  leftovers(): string[];
  stop(): Promise<void>;
}

/**
 * Starts a runner on a policy extending `base` with a pool of its own. The build directory is
 * under /var/tmp: under /tmp it would lie beneath the sandbox's /tmp, which is the request's
 * temporary directory (the runner refuses that overlap).
 */
export async function startWorker(options: { base?: string; extra?: string; count?: number; parent?: string; runnerArgs?: string[] } = {}): Promise<Worker> {
  const count = options.count ?? 4;
  const dir = mkdtempSync(join(options.parent ?? '/var/tmp', 'stk-runner-'));
  chmodSync(dir, 0o755);
  const firstUid = nextUid;
  nextUid += count;
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `stockade: 1\nname: test-runner\nextends: ${join(ROOT, 'policies', (options.base ?? 'remote-exec') + '.yaml')}\n` +
      `users:\n  range: { first: ${firstUid}, count: ${count}, gid: ${firstUid} }\n  state_dir: ${join(dir, 'state')}\n` +
      `filesystem:\n  build_dir_host: ${dir}\n` + (options.extra ?? ''),
  );
  const buildDirectory = join(dir, 'build');
  mkdirSync(buildDirectory, { mode: 0o755 });
  const socket = join(dir, 'runner.sock');
  const runner = spawn(process.execPath, [CLI, 'runner', '--socket', socket, '--build-directory', buildDirectory, '--policy', policy, ...(options.runnerArgs ?? [])], {
    env: { ...CLEAN_ENV, STOCKADE_BUILDS_DIR: join(dir, 'builds') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  runner.stderr!.on('data', (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (stderr.includes('serving policy')) {
        clearInterval(timer);
        resolve();
      } else if (runner.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`runner exited ${runner.exitCode}: ${stderr}`));
      }
    }, 50);
  });
  const Client = clientConstructor();
  const client = new Client(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as RunnerClient;
  const call = (request: RunRequest, callOptions: grpc.CallOptions = {}) => {
    let handle!: grpc.ClientUnaryCall;
    const done = new Promise<RunResponse>((resolve, reject) => {
      handle = client.Run(request, callOptions, (err, response) => (err ? reject(err) : resolve(response)));
    });
    return { call: handle, done };
  };
  return {
    dir, buildDirectory, socket, policy, firstUid, count, runner, client,
    stderr: () => stderr,
    layOut(id, files = {}, dirs = []) {
      const actionDir = join(buildDirectory, id);
      const root = join(actionDir, 'root');
      for (const d of ['', 'root', 'tmp', 'logs']) mkdirSync(join(actionDir, d), { mode: 0o755 });
      for (const d of dirs) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
      for (const [path, content] of Object.entries(files)) {
        mkdirSync(join(root, path, '..'), { recursive: true, mode: 0o755 });
        writeFileSync(join(root, path), content, { mode: content.startsWith('#!') ? 0o555 : 0o444 });
      }
      return {
        dir: actionDir,
        root,
        request: { arguments: [], input_root_directory: `${id}/root`, temporary_directory: `${id}/tmp`, server_logs_directory: `${id}/logs`, stdout_path: `${id}/stdout`, stderr_path: `${id}/stderr`, working_directory: '' },
      };
    },
    run: (request, callOptions) => call(request, callOptions).done,
    call,
    leftovers() {
      const found: string[] = [];
      if (readFileSync('/proc/self/mountinfo', 'utf8').includes(dir)) found.push(`a mount under ${dir}`);
      const procs = Array.from({ length: count }, (_, i) => processesOf(firstUid + i)).flat();
      if (procs.length) found.push(`processes of the pool: ${procs.join(' ')}`);
      const builds = readdirSync(dir).filter((n) => n.startsWith('root-') || n.startsWith('action-'));
      if (builds.length) found.push(`build directories: ${builds.join(' ')}`);
      for (const root of ['/sys/fs/cgroup/pids/stockade', '/sys/fs/cgroup/memory/stockade', '/sys/fs/cgroup/cpuacct/stockade', '/sys/fs/cgroup/stockade', '/sys/fs/cgroup/unified/stockade']) {
        const own = (name: string) => Array.from({ length: count }, (_, i) => `-uid${firstUid + i}`).some((tag) => name.endsWith(tag));
        const groups = existsSync(root) ? readdirSync(root).filter(own) : [];
        if (groups.length) found.push(`cgroups under ${root}: ${groups.join(' ')}`);
      }
      return found;
    },
    async stop() {
      client.close();
      if (runner.exitCode === null) {
        const exited = new Promise((resolve) => runner.once('exit', resolve));
        runner.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
