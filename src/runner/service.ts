// buildbarn.runner.Runner over gRPC on a Unix socket: CheckReadiness and Run, each Run one
// action (action.ts). Cancelling a call kills its action; closing the server cancels them all.
import { chmodSync, chownSync, lstatSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { ERRNO, OPEN_FLAGS } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { AT_SYMLINK_NOFOLLOW, statx } from '../ffi/fsat.js';
import { close } from '../ffi/libc.js';
import { ZygotePool } from '../daemon/zygotes.js';
import { ActionCancelled, ActionFailed, ActionTreeTooLarge, runAction, type ActionResult, type RunnerContext } from './action.js';
import { DIRECTORY, openRequestPath, relativeParts, RequestInvalid, type RunRequest } from './request.js';

export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
export const RUNNER_PROTO = 'buildbarn/runner/runner.proto';
export const RESOURCE_USAGE_PROTO = 'buildbarn/resourceusage/resourceusage.proto';
export const POSIX_RESOURCE_USAGE_URL = 'type.googleapis.com/buildbarn.resourceusage.POSIXResourceUsage';
/** Largest request accepted: arguments and environment are bounded again, field by field (request.ts). */
export const MAX_MESSAGE_BYTES = 4 << 20;
/** How long serveRunner waits for its zygotes to be ready to fork (as the daemon). */
const ZYGOTE_START_TIMEOUT_MS = 10_000;

/** The Runner service definition, as proto-loader reads it from proto/ (snake_case field names, int64 as numbers). */
export function loadRunnerService(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(RUNNER_PROTO, { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, defaults: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { buildbarn: { runner: { Runner: grpc.ServiceClientConstructor } } };
  return pkg.buildbarn.runner.Runner.service;
}

/** The POSIXResourceUsage message type, to put it in (and read it from) a google.protobuf.Any. */
export function resourceUsageType(): protobuf.Type {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : `${PROTO_DIR}${target}`);
  root.loadSync(RESOURCE_USAGE_PROTO, { keepCase: true });
  return root.lookupType('buildbarn.resourceusage.POSIXResourceUsage');
}

function duration(micros: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(micros / 1e6), nanos: (micros % 1e6) * 1000 };
}

function encodeUsage(type: protobuf.Type, result: ActionResult): Buffer {
  const usage: Record<string, unknown> = {};
  if (result.userUs !== undefined) usage.user_time = duration(result.userUs);
  if (result.systemUs !== undefined) usage.system_time = duration(result.systemUs);
  if (result.maxRssBytes !== undefined) usage.maximum_resident_set_size = result.maxRssBytes;
  if (result.terminationSignal) usage.termination_signal = result.terminationSignal;
  return Buffer.from(type.encode(type.fromObject(usage)).finish());
}

function statusOf(err: unknown): Partial<grpc.StatusObject> {
  const details = err instanceof Error ? err.message : String(err);
  if (err instanceof RequestInvalid) return { code: grpc.status.INVALID_ARGUMENT, details };
  if (err instanceof ActionCancelled) return { code: grpc.status.CANCELLED, details };
  if (err instanceof ActionFailed) return { code: grpc.status.INTERNAL, details };
  if (err instanceof ActionTreeTooLarge) return { code: grpc.status.RESOURCE_EXHAUSTED, details };
  return { code: grpc.status.INTERNAL, details: `stockade runner: ${details}` };
}

/** CheckReadiness: OK when `path` exists beneath the build directory (as lstat sees it). */
function checkReadiness(context: RunnerContext, path: string): void {
  const parts = relativeParts('path', path);
  if (parts.length === 0) return;
  const parent = openRequestPath(context.buildDirFd, 'path', parts.slice(0, -1).join('/'), OPEN_FLAGS.O_PATH | DIRECTORY);
  try {
    statx(parent, parts[parts.length - 1], AT_SYMLINK_NOFOLLOW);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ERRNO.ENOENT) throw new ActionFailed(`path ${JSON.stringify(path)}: does not exist in the build directory ${context.buildDirectory}`);
    throw err;
  } finally {
    close(parent);
  }
}

export interface RunnerServer {
  /** Cancels every running action, waits for them to be cleaned up, and closes the socket. */
  close(): Promise<void>;
  /** Actions running now. */
  readonly running: number;
}

/**
 * Serves the Runner service on the Unix socket `socketPath` (replacing a stale socket there,
 * nothing else); 0600, or 0660 for `socketGroup`. With `zygotes`, that many zygote processes
 * fork the actions' inits (an action finding none free starts a fresh Node init).
 */
export async function serveRunner(runnerContext: RunnerContext, socketPath: string, options: { socketGroup?: number; zygotes?: number } = {}): Promise<RunnerServer> {
  const usageType = resourceUsageType();
  const zygotes = options.zygotes ? new ZygotePool(options.zygotes, (message) => runnerContext.onNotice?.(message)) : undefined;
  await zygotes?.start(ZYGOTE_START_TIMEOUT_MS);
  const context: RunnerContext = { ...runnerContext, zygotes };
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES });
  const actions = new Set<{ controller: AbortController; done: Promise<unknown> }>();
  server.addService(loadRunnerService(), {
    CheckReadiness: (call: grpc.ServerUnaryCall<{ path: string }, object>, callback: grpc.sendUnaryData<object>) => {
      try {
        checkReadiness(context, call.request.path ?? '');
        callback(null, {});
      } catch (err) {
        callback(statusOf(err));
      }
    },
    Run: (call: grpc.ServerUnaryCall<RunRequest, object>, callback: grpc.sendUnaryData<object>) => {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      const done = runAction(context, call.request, controller.signal).then(
        (result) => callback(null, { exit_code: result.exitCode, resource_usage: [{ type_url: POSIX_RESOURCE_USAGE_URL, value: encodeUsage(usageType, result) }] }),
        (err: unknown) => callback(statusOf(err)),
      );
      const action = { controller, done };
      actions.add(action);
      void done.finally(() => actions.delete(action));
    },
  });
  try {
    const stale = lstatSync(socketPath, { throwIfNoEntry: false });
    if (stale && !stale.isSocket()) throw new Error(`--socket ${socketPath}: exists and is not a socket`);
    if (stale) unlinkSync(socketPath);
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    // Whoever can connect can run actions as the pool's users: root, and the group named for a worker that is not root.
    if (options.socketGroup !== undefined) chownSync(socketPath, 0, options.socketGroup);
    chmodSync(socketPath, options.socketGroup === undefined ? 0o600 : 0o660);
  } catch (err) {
    server.forceShutdown();
    await zygotes?.close();
    throw err;
  }
  return {
    get running() {
      return actions.size;
    },
    async close() {
      for (const action of actions) action.controller.abort();
      await Promise.all([...actions].map((a) => a.done));
      server.forceShutdown();
      // Only now: a zygote's inits die with it.
      await zygotes?.close();
      try {
        unlinkSync(socketPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    },
  };
}
