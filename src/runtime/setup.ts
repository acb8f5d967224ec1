// The sandbox set-up, run by PID 1 of the build's fresh PID namespace, whichever way it was
// started: a forked copy of the supervisor (zygote.ts) or a fresh Node (init.ts, the fallback).
// It builds the sandbox step by step (anything that needs privilege before the identity drop,
// seccomp last), then execve's the builder, which becomes PID 1, with every signal at its
// default. Bind sources are the objects the supervisor opened and checked, cloned from its fds
// before init leaves the host's mount namespace; the new root is filled through fds beneath its
// own (mount.ts). Any failure throws before the builder runs (fail closed); the caller reports it
// on STATUS_FD and exits with SETUP_FAILED.
// Every call here is synchronous: no other thread of the process may run in the host's
// namespaces and root on its behalf, and a forked child has no other thread at all.
import { writeFileSync, writeSync } from 'node:fs';
import { CLONE_FLAGS, CLOSE_RANGE_FLAGS } from '../ffi/arch.js';
import { chdir, clearCloexec, clearNonblock, closeRange, execve, getpid, setsid, unshare } from '../ffi/libc.js';
import { applyLandlock } from '../ffi/landlock.js';
import { compileSeccomp, loadSeccomp, loadSeccompPrivileged, type CompiledSeccomp } from '../seccomp/compile.js';
import { forkableMemoryFilter, vsockFilter } from '../seccomp/policy-filter.js';
import type { Plan } from '../plan/types.js';
import { applyMounts, cloneSources, makeMountsPrivate, mountRoot, pivot } from './mount.js';
import { createDeviceLinks } from './dev.js';
import { writeEtcFiles } from './etc.js';
import { applyUts } from './uts.js';
import { applyNetwork, supervisorMakesNetns } from './net.js';
import { applyLimits } from './limits.js';
import { dropPrivileges } from './ids.js';
import { isolateKeyrings } from './keyring.js';
import { armParentDeath, resetSignals } from './signals.js';
import { EXEC_LINE, STATUS_FD, type InitRequest } from './request.js';
import { forkFilterLoaded } from './fork-filter.js';

export function report(message: object): void {
  writeSync(STATUS_FD, JSON.stringify(message) + '\n');
}

function namespaceFlags(plan: Plan): number {
  const flags: Record<string, number> = {
    mount: CLONE_FLAGS.CLONE_NEWNS,
    uts: CLONE_FLAGS.CLONE_NEWUTS,
    ipc: CLONE_FLAGS.CLONE_NEWIPC,
    net: CLONE_FLAGS.CLONE_NEWNET,
    cgroup: CLONE_FLAGS.CLONE_NEWCGROUP,
  };
  // The PID namespace is the supervisor's doing: init is already its PID 1. So is the network
  // namespace for slirp, which slirp4netns had to attach to before init got the request.
  const made = supervisorMakesNetns(plan) ? ['pid', 'net'] : ['pid'];
  return plan.namespaces.filter((n) => !made.includes(n)).reduce((acc, n) => acc | flags[n], 0);
}

export function setUp(request: InitRequest): never {
  const { plan, uid, gid, groups, newRoot } = request;
  // getpid(), not process.pid: Node reads its pid once at start-up, the forked child's is its parent's.
  const pid = getpid();
  if (pid !== 1) throw new Error(`init is pid ${pid}, not PID 1 of a fresh PID namespace`);
  // Before anything else of the build: its limits hold from here, for init and all it starts. By
  // init itself ("0": the writer), not the supervisor: a cgroup v1 move costs milliseconds of
  // waiting in the kernel, which would stall a daemon's every build. (A fresh-Node init is in
  // already: its supervisor put it there so that its Node start-up counts; this is then a no-op.)
  for (const procs of request.cgroupProcs) writeFileSync(procs, '0');
  if (request.sources.fds.length !== plan.mounts.length) throw new Error(`the request has ${request.sources.fds.length} mount sources for ${plan.mounts.length} mounts`);
  // Compiled while the host's libseccomp is still reachable; loaded last.
  const seccomp: CompiledSeccomp | null = plan.seccomp ? compileSeccomp(plan.seccomp) : null;
  const vsockPlan = vsockFilter(plan.network);
  const vsock = vsockPlan ? compileSeccomp(vsockPlan, { otherArchitectures: 'allow' }) : null;
  // Every builder carries the fork filter, whichever way its init started: a forked init has it
  // from the process that forked it.
  const forkFilter = forkFilterLoaded() || request.inheritsForkFilter ? null : compileSeccomp(forkableMemoryFilter(), { otherArchitectures: 'allow' });
  if (seccomp?.skipped.length) report({ warning: `seccomp: optional rules skipped, unknown to this libseccomp: ${seccomp.skipped.join(', ')}` });

  // While init still shares the host's mount namespace, the only one whose mounts it can clone.
  const trees = cloneSources(request.sources);
  unshare(namespaceFlags(plan));
  makeMountsPrivate();
  const rootFd = mountRoot(plan, newRoot);
  writeEtcFiles(plan, rootFd, uid, gid);
  applyMounts(plan, trees, rootFd);
  createDeviceLinks(plan, rootFd);
  pivot(plan, rootFd);

  applyUts(plan);
  applyNetwork(plan);
  applyLimits(plan);
  setsid();
  chdir(plan.build.cwd ?? plan.build.dir);
  // Loaded while init may still load a filter without no_new_privs, which the policy may not want.
  if (forkFilter) loadSeccompPrivileged(forkFilter);
  if (vsock) loadSeccompPrivileged(vsock);
  dropPrivileges(plan, uid, gid, groups);
  // Both after the identity drop: the keyrings must be the build user's, and a change of
  // credentials clears the parent-death signal.
  isolateKeyrings();
  armParentDeath(STATUS_FD);
  if (plan.landlock) {
    const { dropped } = applyLandlock(plan.landlock);
    if (dropped.length) report({ warning: `landlock (best-effort): not enforced by this kernel: ${dropped.join(', ')}` });
  }
  resetSignals();
  if (seccomp) loadSeccomp(seccomp);

  for (const fd of [0, 1, 2]) {
    clearCloexec(fd);
    // A builder writing faster than its log is read must block, not fail with EAGAIN.
    clearNonblock(fd);
  }
  // Everything else closes at execve; STATUS_FD stays open until then to report an execve failure.
  closeRange(3, undefined, CLOSE_RANGE_FLAGS.CLOSE_RANGE_CLOEXEC);
  // The last line before the builder runs: a forked init that ends without it died in set-up
  // (its build may be retried); one that wrote it may have started the builder (never retried).
  writeSync(STATUS_FD, EXEC_LINE + '\n');
  return execve(plan.build.builder, [plan.build.builder, ...plan.build.args], plan.environment);
}
