// Resource limits: one build must not take the host down with it.
import { DEFAULTS } from '../../plan/defaults.js';
import type { Rule } from '../types.js';

export const limitRules: Rule[] = [
  {
    id: 'STK-LIM-001',
    concern: 'limits',
    severity: 'medium',
    title: 'No limit on the number of processes',
    why: 'A fork bomb (or a runaway parallel make) fills the host\'s process table: other builds and host services cannot start processes.',
    fix: 'Set limits.cgroup.pids (e.g. 2048).',
    check: ({ plan }) =>
      plan.limits.cgroup.pids === undefined && plan.limits.rlimits.nproc === undefined ? [{ pointer: '/limits/cgroup/pids', message: 'no process limit (neither limits.cgroup.pids nor rlimit nproc)' }] : [],
  },
  {
    id: 'STK-LIM-002',
    concern: 'limits',
    severity: 'medium',
    title: 'No memory limit',
    why: 'A build may use all the host\'s memory; the OOM killer then chooses among every process on the host.',
    fix: 'Set limits.cgroup.memory (e.g. 8G).',
    check: ({ plan }) =>
      plan.limits.cgroup.memoryBytes === undefined && plan.limits.rlimits.as === undefined ? [{ pointer: '/limits/cgroup/memory', message: 'no memory limit (neither limits.cgroup.memory nor rlimit as)' }] : [],
  },
  {
    id: 'STK-LIM-003',
    concern: 'limits',
    severity: 'low',
    title: "oom_score_adj is below guix-daemon's 1000",
    why: 'guix-daemon sets 1000 so that, when memory runs out, the kernel kills builds before host services and the daemon.',
    fix: 'Set oom_score_adj: 1000 (the default).',
    check: ({ plan }) =>
      plan.oomScoreAdj < DEFAULTS.oomScoreAdj ? [{ pointer: '/oom_score_adj', message: `oom_score_adj is ${plan.oomScoreAdj}: under memory pressure host processes may be killed before the build`, badness: (DEFAULTS.oomScoreAdj - plan.oomScoreAdj) / 2000 }] : [],
  },
  {
    id: 'STK-LIM-004',
    concern: 'limits',
    severity: 'low',
    title: "No limit on the size of a build's outputs",
    why: 'A build may hand over outputs of any size: they fill the disk of the store that other builds and the host share. guix-daemon has no such limit.',
    fix: 'Set limits.output_bytes (e.g. 4G).',
    check: ({ plan }) => (plan.limits.outputBytes === null ? [{ pointer: '/limits/output_bytes', message: 'no limit on the bytes of outputs (limits.output_bytes)' }] : []),
  },
  {
    id: 'STK-LIM-005',
    concern: 'limits',
    severity: 'low',
    title: 'No limit on what a build writes to its build directory',
    why: "The build directory is on the host's disk: a build may fill it, and every other build and host service writing there fails. guix-daemon has no such limit.",
    fix: 'Set limits.build_dir_bytes (e.g. 4G); the build directory then lives in memory, charged to limits.cgroup.memory.',
    check: ({ plan }) => (plan.limits.buildDirBytes === null ? [{ pointer: '/limits/build_dir_bytes', message: "no limit on the build directory's bytes on the host's disk (limits.build_dir_bytes)" }] : []),
  },
];
