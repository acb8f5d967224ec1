// Landlock: a second wall inside the sandbox that holds even if a mount is wrong.
import type { Hit, Rule } from '../types.js';

export const landlockRules: Rule[] = [
  {
    id: 'STK-LL-001',
    concern: 'landlock',
    severity: 'low',
    title: 'No Landlock rules',
    why: 'Landlock limits what the build may write and execute even where a mount or a permission is wrong, and scopes abstract unix sockets and signals. guix-daemon has none.',
    fix: 'Add a landlock section with compat: require (see policies/strict.yaml).',
    check: ({ plan }) => (plan.landlock ? [] : [{ pointer: '/landlock', message: 'no Landlock rules' }]),
  },
  {
    id: 'STK-LL-002',
    concern: 'landlock',
    severity: 'medium',
    title: 'Landlock is best-effort',
    why: 'With best-effort, a kernel whose Landlock ABI lacks something runs the build with less protection than the policy reads as, and only a log line says so. Kernels of the last years (ABI 6 and up) have everything the policy language can ask for.',
    fix: 'Set landlock.compat: require (the default).',
    check: ({ plan }) => (plan.landlock?.compat === 'best-effort' ? [{ pointer: '/landlock/compat', message: 'Landlock is best-effort: the build may start with less than the policy asks' }] : []),
  },
  {
    id: 'STK-LL-003',
    concern: 'landlock',
    severity: 'medium',
    title: 'Landlock lets the build write everywhere',
    why: 'Write access beneath / gives Landlock nothing to refuse: the build dir, /tmp and the outputs are all a build needs.',
    fix: 'List only /dev, /tmp, {build_dir} and {outputs} in landlock.write.',
    check: ({ policy }) =>
      (policy.landlock?.write ?? []).flatMap((path, i): Hit[] => (path.replace(/\/+$/, '') === '' ? [{ pointer: `/landlock/write/${i}`, message: 'Landlock allows writing beneath /' }] : [])),
  },
];
