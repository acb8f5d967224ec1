// The probe checks through `stockade runner`'s own path: the probe is sent as a remote action
// (runAction, as a Run call reaches it) into a build directory laid out as bb_worker lays one
// out, and each check compares what the probe saw with the Plan the runner made for the action.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AT_FDCWD, nativeSeccompArch, OPEN_FLAGS } from '../ffi/arch.js';
import { fstat, openat } from '../ffi/fsat.js';
import { close } from '../ffi/libc.js';
import type { Plan } from '../plan/types.js';
import { loadPolicy } from '../policy/load.js';
import { runAction } from '../runner/action.js';
import { PROBE_MARKER, type Observation } from './observation.js';
import { probeConfig, wrapper, type Subject, type SubjectOptions } from './sandbox.js';

/** Runs the probe as one remote action under `file`'s policy; returns the action's Plan and what the probe saw. */
export async function observeThroughRunner(subject: Subject, file: string, options: SubjectOptions & { signal?: AbortSignal }): Promise<{ plan: Plan; observation: Observation }> {
  const dir = mkdtempSync('/var/tmp/stockade-conformance-runner-');
  try {
    chmodSync(dir, 0o755);
    const build = join(dir, 'build');
    for (const d of [build, join(build, 'probe'), join(build, 'probe/root'), join(build, 'probe/tmp'), join(build, 'probe/logs')]) mkdirSync(d, { mode: 0o755 });
    const buildDirFd = openat(AT_FDCWD, build, OPEN_FLAGS.O_DIRECTORY | OPEN_FLAGS.O_CLOEXEC);
    let plan: Plan | undefined;
    try {
      const st = fstat(buildDirFd);
      const context = { loaded: loadPolicy(file, { policiesDir: options.policiesDir }), buildDirectory: build, buildDirFd, owner: { uid: st.uid, gid: st.gid }, nativeArch: nativeSeccompArch(), poolTimeoutMs: 60_000 };
      const request = {
        arguments: ['/bin/sh', '-c', wrapper()],
        environment_variables: {},
        working_directory: '',
        input_root_directory: 'probe/root',
        temporary_directory: 'probe/tmp',
        server_logs_directory: 'probe/logs',
        stdout_path: 'probe/stdout',
        stderr_path: 'probe/stderr',
      };
      await runAction(context, request, options.signal ?? new AbortController().signal, {
        amendPlan: (made) => {
          // The probe's node and Stockade's dist/, bound as for every conformance sandbox; the run's pool.
          made.mounts.push(...subject.plan.mounts.filter((m) => m.role === 'probe'));
          made.identity = subject.plan.identity;
          made.build.args = ['-c', wrapper(), JSON.stringify(probeConfig(made, subject.host))];
        },
        onPlan: (made) => (plan = made),
      });
    } finally {
      close(buildDirFd);
    }
    const stdout = readFileSync(join(build, 'probe/stdout'), 'utf8');
    const lines = stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith(PROBE_MARKER));
    if (at < 0 || !plan) throw new Error(`the probe reported nothing through the runner\n${readFileSync(join(build, 'probe/stderr'), 'utf8').trim()}`);
    const observation = JSON.parse(lines[at].slice(PROBE_MARKER.length)) as Observation;
    observation.start.fds = lines.slice(0, at).filter(Boolean).map(Number).sort((a, b) => a - b);
    return { plan, observation };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
