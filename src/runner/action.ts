// One remote action: a RunRequest becomes a Plan of the runner's policy and is run by the same
// runtime as `stockade run` (runBuild). The input root, opened beneath the build directory, is
// bound writable as the sandbox's build directory, at its host path or where the policy says;
// the request's temporary directory is the sandbox's /tmp; the environment is exactly the
// request's; stdout and stderr are written by the runner into the files the request names.
import { statSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import { OPEN_FLAGS } from '../ffi/arch.js';
import { fchown, fstat } from '../ffi/fsat.js';
import { close } from '../ffi/libc.js';
import { openBeneath, PathRefused } from '../ffi/resolve.js';
import { plan as planBuild } from '../plan/plan.js';
import { SpecRefused } from '../plan/spec.js';
import type { Plan } from '../plan/types.js';
import type { LoadedPolicy } from '../policy/load.js';
import { isUnder } from '../policy/semantics.js';
import { BuilderRefused, checkBuilder } from '../runtime/paths.js';
import { supervisorMakesNetns } from '../runtime/net.js';
import { runBuild } from '../runtime/supervisor.js';
import type { Zygote } from '../runtime/zygote-client.js';
import { checkRequest, closeAll, DIRECTORY, openRequestPath, relativeParts, RequestInvalid, type RunRequest } from './request.js';
import { DEFAULT_MAX_TREE_ENTRIES, handBack, lendDirectories, TreeTooLarge, type Owner } from './tree.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
/** fchown's "leave the group as it is". */
const KEEP_GROUP = 0xffffffff;
/** The names of the trees the runner opens and binds (RunOptions.trees). */
const INPUT_ROOT = 'input-root';
const TEMPORARY_DIRECTORY = 'temporary-directory';

export interface RunnerContext {
  loaded: LoadedPolicy;
  /** The runner's build directory, its real path, and a directory fd of it every request path is opened beneath. */
  buildDirectory: string;
  buildDirFd: number;
  /** Who gets what the action made (the build directory's owner: bb_worker's user). */
  owner: Owner;
  nativeArch: string;
  /** How long an action waits for a free build user. */
  poolTimeoutMs: number;
  /** Bound on the entries of an action's input root, and of its temporary directory, walked to lend and hand back (default DEFAULT_MAX_TREE_ENTRIES). */
  maxTreeEntries?: number;
  onNotice?: (message: string) => void;
  /** Zygote processes that fork actions' inits, as the daemon's (none: every init a fresh Node). */
  zygotes?: { take(): Zygote | undefined; give(zygote: Zygote): void };
}

export interface ActionResult {
  /** The action's exit status; -1 when a signal ended it. */
  exitCode: number;
  /** Signal name without SIG, when a signal ended it. */
  terminationSignal?: string;
  userUs?: number;
  systemUs?: number;
  maxRssBytes?: number;
}

/** The sandbox could not run the action (gRPC INTERNAL). */
export class ActionFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ActionFailed';
  }
}

/** The call was cancelled and the action killed (gRPC CANCELLED). */
export class ActionCancelled extends Error {}

/** The action ran, but made a tree too large to hand back whole (gRPC RESOURCE_EXHAUSTED). */
export class ActionTreeTooLarge extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ActionTreeTooLarge';
  }
}

let sequence = 0;

/** Where the input root appears in the sandbox. */
function inputRootTarget(loaded: LoadedPolicy, hostPath: string): string {
  const chosen = loaded.policy.remote_execution?.input_root;
  return chosen === undefined || chosen === 'real' ? hostPath : chosen;
}

/**
 * Checks that `path` (in the sandbox) is an executable regular file there: beneath the input
 * root through its fd (no symlink anywhere), or in a policy path bound at its own path (as
 * checkBuilder checks a build's builder). Returns why not, or undefined.
 */
function programProblem(path: string, plan: Plan, inputFd: number): string | undefined {
  const target = plan.build.dir;
  if (isUnder(path, target)) {
    let fd: number;
    try {
      fd = openBeneath(inputFd, path === target ? '' : path.slice(target.length + 1).replace(/^\/+/, ''), OPEN_FLAGS.O_PATH, { label: `program ${path}` });
    } catch (err) {
      if (err instanceof PathRefused) return err.message;
      return `program ${path}: not found in the input root`;
    }
    try {
      const st = fstat(fd);
      return (st.mode & S_IFMT) === S_IFREG && (st.mode & 0o111) !== 0 ? undefined : `program ${path}: not an executable file`;
    } finally {
      close(fd);
    }
  }
  const bound = plan.mounts.find((m) => m.type === 'bind' && m.role === 'path' && m.source.kind === 'host' && m.source.path === m.target && isUnder(path, m.target));
  if (!bound) return `program ${path}: not in the input root nor in a path the policy binds at its own path`;
  try {
    checkBuilder({ ...plan, build: { ...plan.build, builder: path } });
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  const st = statSync(path, { throwIfNoEntry: false });
  return st?.isFile() && (st.mode & 0o111) !== 0 ? undefined : `program ${path}: not an executable file`;
}

/** argv[0] as the sandbox will exec it: a bare name looked up in the request's PATH (relative entries from the working directory). */
function resolveProgram(argv0: string, env: Record<string, string>, cwd: string, plan: Plan, inputFd: number): string {
  if (argv0.includes('/')) {
    const path = posix.resolve(cwd, argv0);
    const problem = programProblem(path, plan, inputFd);
    if (problem) throw new RequestInvalid(`arguments[0]: ${problem}`);
    return path;
  }
  if (env.PATH === undefined) throw new RequestInvalid(`arguments[0] ${JSON.stringify(argv0)}: no slash, and the environment has no PATH to look it up in`);
  for (const dir of env.PATH.split(':')) {
    const path = posix.resolve(cwd, dir, argv0);
    if (!programProblem(path, plan, inputFd)) return path;
  }
  throw new RequestInvalid(`arguments[0] ${JSON.stringify(argv0)}: not found in PATH ${JSON.stringify(env.PATH)}`);
}

/** The Plan of one action, its input root bound where `target` says. */
function planAction(context: RunnerContext, request: RunRequest, target: string, cwd: string, inputFd: number, hasTmp: boolean, amend?: (plan: Plan) => void): Plan {
  const env = { ...(request.environment_variables ?? {}) };
  const name = `action-${process.pid}-${++sequence}`;
  let plan: Plan;
  try {
    // The builder is resolved below, against the mounts the plan makes.
    plan = planBuild(context.loaded, { name, builder: '/', args: request.arguments.slice(1), env, inputs: [], outputs: [], cores: 0 }, { nativeArch: context.nativeArch, buildDir: target, specSource: 'RunRequest' });
  } catch (err) {
    if (err instanceof SpecRefused) throw new RequestInvalid(err.message);
    throw err;
  }
  // The input root takes the place of the fresh build directory: limits.build_dir_bytes does not bound it.
  const buildDirMount = plan.mounts.find((m) => m.type === 'bind' && m.source.kind === 'build-dir');
  if (buildDirMount?.type !== 'bind') throw new ActionFailed('the plan binds no build directory to replace with the input root');
  buildDirMount.source = { kind: 'tree', name: INPUT_ROOT };
  plan.limits.buildDirBytes = null;
  // REAPI's environment is the whole environment: the policy's set, pass and build_dir_vars do not apply.
  plan.environment = env;
  if (context.loaded.policy.remote_execution?.temporary_directory === 'tmpdir') plan.environment.TMPDIR = '/tmp';
  if (cwd !== target) plan.build.cwd = cwd;
  if (hasTmp) {
    // In the tmpfs's place, so the mounts stay parents first.
    const tmp = plan.mounts.findIndex((m) => m.role === 'tmp');
    if (tmp < 0) throw new ActionFailed('the plan has no /tmp to replace with the temporary directory');
    plan.mounts[tmp] = { source: { kind: 'tree', name: TEMPORARY_DIRECTORY }, target: '/tmp', type: 'bind', readonly: false, nosuid: true, nodev: true, noexec: false, kind: 'dir', role: 'tmp' };
  }
  // A bind holds a host tree: the input root's mount point would be made in it.
  const clash = plan.mounts.find((m) => m.type === 'bind' && m.role !== 'build-dir' && (isUnder(target, m.target) || isUnder(m.target, target)));
  if (clash) throw new ActionFailed(`the input root's place in the sandbox, ${target}, overlaps ${clash.role} ${clash.target} (remote_execution.input_root, or the build directory's location)`);
  amend?.(plan);
  plan.build.builder = resolveProgram(request.arguments[0], env, cwd, plan, inputFd);
  return plan;
}

/** Opens one of the request's output files beneath the build directory, owned by the worker's user. */
function openOutputFile(context: RunnerContext, field: string, path: string): number | undefined {
  if (path === '') return undefined;
  const fd = openRequestPath(context.buildDirFd, field, path, OPEN_FLAGS.O_WRONLY | OPEN_FLAGS.O_CREAT | OPEN_FLAGS.O_TRUNC, 0o644);
  try {
    // Opened beneath, so this is the very file: given to the worker as it would have made it.
    const st = fstat(fd);
    if ((st.mode & S_IFMT) !== S_IFREG) throw new RequestInvalid(`${field} ${JSON.stringify(path)}: not a regular file`);
    if (st.uid !== context.owner.uid || st.gid !== context.owner.gid) fchown(fd, context.owner.uid, context.owner.gid);
  } catch (err) {
    close(fd);
    throw err;
  }
  return fd;
}

/** What the conformance suite needs of an action besides its answer. */
export interface ActionHooks {
  /** Changes the action's Plan before argv[0] is resolved in it (the suite binds its probe in). */
  amendPlan?: (plan: Plan) => void;
  /** Told the Plan the action runs under. */
  onPlan?: (plan: Plan) => void;
}

/** Runs one action to its end; throws RequestInvalid, ActionFailed or ActionCancelled. */
export async function runAction(context: RunnerContext, request: RunRequest, signal: AbortSignal, hooks: ActionHooks = {}): Promise<ActionResult> {
  checkRequest(request);
  const fds: (number | undefined)[] = [];
  let inputFd: number | undefined;
  let tmpFd: number | undefined;
  // Set when the hand-back stopped at a bound: the action is answered RESOURCE_EXHAUSTED (not a result the worker would upload).
  let tooLarge: string | undefined;
  const maxEntries = context.maxTreeEntries ?? DEFAULT_MAX_TREE_ENTRIES;
  try {
    const rootParts = relativeParts('input_root_directory', request.input_root_directory ?? '');
    inputFd = openRequestPath(context.buildDirFd, 'input_root_directory', request.input_root_directory ?? '', DIRECTORY);
    fds.push(inputFd);
    const target = inputRootTarget(context.loaded, posix.join(context.buildDirectory, ...rootParts));
    const workParts = relativeParts('working_directory', request.working_directory ?? '');
    close(openRequestPath(inputFd, 'working_directory', request.working_directory ?? '', OPEN_FLAGS.O_PATH | DIRECTORY));
    const cwd = posix.join(target, ...workParts);
    if (request.temporary_directory) {
      tmpFd = openRequestPath(context.buildDirFd, 'temporary_directory', request.temporary_directory, DIRECTORY);
      fds.push(tmpFd);
    }
    if (request.server_logs_directory) close(openRequestPath(context.buildDirFd, 'server_logs_directory', request.server_logs_directory, OPEN_FLAGS.O_PATH | DIRECTORY));
    const plan = planAction(context, request, target, cwd, inputFd, tmpFd !== undefined, hooks.amendPlan);
    hooks.onPlan?.(plan);
    const stdout = openOutputFile(context, 'stdout_path', request.stdout_path ?? '');
    fds.push(stdout);
    const stderr = openOutputFile(context, 'stderr_path', request.stderr_path ?? '');
    fds.push(stderr);

    const input = inputFd;
    const tmp = tmpFd;
    const trees: Record<string, number> = { [INPUT_ROOT]: input };
    if (tmp !== undefined) trees[TEMPORARY_DIRECTORY] = tmp;
    // stdout and stderr land on the worker's disk: bounded together by limits.output_bytes, past which they are cut with a note.
    const outputLimit = plan.limits.outputBytes ?? Infinity;
    let written = 0;
    // As the daemon: a zygote forks init unless the supervisor must make the network namespace; none free, a fresh Node.
    const zygote = supervisorMakesNetns(plan) ? undefined : context.zygotes?.take();
    const result = await runBuild(plan, {
      zygote,
      signal,
      poolTimeoutMs: context.poolTimeoutMs,
      trees,
      builderCheck: (checked) => {
        const problem = programProblem(checked.build.builder, checked, input);
        if (problem) throw new BuilderRefused(problem);
      },
      onNotice: context.onNotice,
      // Before init gets its request: the action's directories become the build user's.
      onStart: ({ uid }) => {
        lendDirectories(input, { uid, gid: KEEP_GROUP }, maxEntries);
        if (tmp !== undefined) lendDirectories(tmp, { uid, gid: KEEP_GROUP }, maxEntries);
      },
      // Every process of the action is gone and its user still ours: nothing moves in its trees, no other action has that user.
      onEnded: async (uid) => {
        tooLarge = await handBackAll(context, request, uid, [input, tmp], maxEntries);
      },
      onOutput: (stream, chunk) => {
        const fd = stream === 'stdout' ? stdout : stderr;
        if (fd === undefined || written > outputLimit) return;
        const room = outputLimit - written;
        written += chunk.length;
        writeSync(fd, chunk.length <= room ? chunk : chunk.subarray(0, room));
        if (written > outputLimit) writeSync(fd, `\n[stockade runner: output cut at ${outputLimit} bytes (limits.output_bytes)]\n`);
      },
    }).finally(() => {
      if (zygote) context.zygotes?.give(zygote);
    });
    if (signal.aborted) throw new ActionCancelled('the call was cancelled: the action was killed');
    if (tooLarge !== undefined) throw new ActionTreeTooLarge(tooLarge);
    switch (result.outcome) {
      case 'refused':
        throw new RequestInvalid(result.message ?? 'refused');
      case 'setup-failed':
        throw new ActionFailed(result.message ?? 'the sandbox could not be set up');
      case 'cancelled':
        throw new ActionCancelled(result.message ?? 'cancelled');
      default:
    }
    // A timeout of the policy kills the action with SIGKILL, as a signal would.
    const killed = result.termSignal ?? (result.outcome === 'timeout' || result.outcome === 'silent-timeout' ? 'SIGKILL' : null);
    return {
      exitCode: killed ? -1 : result.status ?? -1,
      terminationSignal: killed ? killed.replace(/^SIG/, '') : undefined,
      userUs: result.cpu?.userUs,
      systemUs: result.cpu?.systemUs,
      maxRssBytes: result.peakMemoryBytes,
    };
  } finally {
    closeAll(fds);
  }
}

/**
 * Hands back the action's trees, each as far as the bounds let it; says what it could not.
 * Past a bound the rest stays the build user's: the runner says where on its stderr.
 */
async function handBackAll(context: RunnerContext, request: RunRequest, uid: number, trees: (number | undefined)[], maxEntries: number): Promise<string | undefined> {
  const tooLarge: string[] = [];
  for (const fd of trees) {
    if (fd === undefined) continue;
    try {
      await handBack(fd, uid, context.owner, maxEntries);
    } catch (err) {
      if (!(err instanceof TreeTooLarge)) throw err;
      tooLarge.push(err.message);
    }
  }
  if (tooLarge.length === 0) return undefined;
  const message = `${tooLarge.join('; ')}: entries past the bound were not handed back and stay owned by uid ${uid} (input root ${JSON.stringify(request.input_root_directory ?? '')}, temporary directory ${JSON.stringify(request.temporary_directory ?? '')}; --max-tree-entries)`;
  context.onNotice?.(message);
  return message;
}
