import type { ProbeCheck } from '../check.js';
import { plannedAnswer } from './util.js';

const AT_FDCWD = -100;
const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_TMPFILE = 0o20200000;
const S_IFREG = 0o100000;
const SETID = 0o6755;

/** The route the probe took → the syscall and arguments the Plan's filter sees. */
const ROUTES: Record<string, [string, number[]]> = {
  open: ['open', [0, O_CREAT | O_WRONLY, SETID]],
  openat: ['openat', [AT_FDCWD, 0, O_CREAT | O_WRONLY, SETID]],
  tmpfile: ['openat', [AT_FDCWD, 0, O_TMPFILE | O_WRONLY, SETID]],
  creat: ['creat', [0, SETID]],
  mknod: ['mknod', [0, S_IFREG | SETID, 0]],
  mknodat: ['mknodat', [AT_FDCWD, 0, S_IFREG | SETID, 0]],
  // Its flags and mode are in memory the filter cannot read: only a rule without conditions applies.
  openat2: ['openat2', [AT_FDCWD, 0, 0, 24]],
};

export const check: ProbeCheck = {
  id: 'PRV-11', kind: 'probe', property: 'a file cannot be made setuid/setgid by creating it so (open, openat, O_TMPFILE, creat, mknod, mknodat, openat2) where the filter says',
  proves: ['seccomp.rules'],
  evaluate: ({ plan, obs }) => ({
    expected: Object.fromEntries(Object.entries(ROUTES).map(([route, [syscall, args]]) => [route, plannedAnswer(plan, syscall, args)])),
    observed: Object.fromEntries(Object.keys(ROUTES).map((route) => [route, obs.setidCreate[route]?.result ?? 'not tried'])),
  }),
};
