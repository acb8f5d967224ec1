// The builder's environment: nothing secret and nothing from the host should get in.
// (spec_allow letting a spec set LD_PRELOAD and the like is fine: it acts only inside the sandbox.)
import { pointerJoin } from '../../policy/source.js';
import type { Hit, Rule } from '../types.js';

/** Names of variables that usually carry credentials or reach agents holding them. */
export const SECRET_NAME = /TOKEN|SECRET|PASSW|CREDENTIAL|KEY|^AWS_|^AZURE_|^GOOGLE_APPLICATION_CREDENTIALS$|^SSH_AUTH_SOCK$|^SSH_AGENT_PID$|^GNUPGHOME$|^GPG_AGENT_INFO$|^KRB5CCNAME$|^NETRC$|^DOCKER_CONFIG$|^DBUS_SESSION_BUS_ADDRESS$|^XDG_RUNTIME_DIR$/i;
/** Host locations of people's files and of running services. */
const HOST_PATH_PREFIXES = ['/home', '/root', '/run', '/var/run', '/var/lib', '/media', '/mnt', '/srv'];

function pointsAtHost(value: string): string | undefined {
  return value
    .split(':')
    .map((part) => part.trim())
    .find((part) => HOST_PATH_PREFIXES.some((p) => part === p || part.startsWith(p + '/')));
}

export const environmentRules: Rule[] = [
  {
    id: 'STK-ENV-001',
    concern: 'environment',
    severity: 'high',
    title: 'The environment passes secrets',
    why: 'Tokens, passwords, keys and agent sockets given to a build can be read by every program of the build and written into its log or its outputs, which are public.',
    fix: 'Remove the variable from environment.set and environment.pass; fetch what needs credentials outside the build.',
    check: ({ policy }) => {
      const env = policy.environment ?? {};
      return [
        ...Object.keys(env.set ?? {}).filter((n) => SECRET_NAME.test(n)).map((n): Hit => ({ pointer: pointerJoin('/environment/set', n), message: `environment.set gives the build ${n}, which looks like a secret` })),
        ...(env.pass ?? []).flatMap((n, i): Hit[] => (SECRET_NAME.test(n) ? [{ pointer: `/environment/pass/${i}`, message: `environment.pass hands the caller's ${n} to the build, which looks like a secret` }] : [])),
      ];
    },
  },
  {
    id: 'STK-ENV-002',
    concern: 'environment',
    severity: 'low',
    title: 'The environment points at host paths',
    why: 'These paths do not exist in the sandbox; a variable naming them tells the build about the host and hints that the build is expected to reach outside.',
    fix: 'Point the variable at a path inside the sandbox ({build_dir}, /tmp, the store).',
    check: ({ policy }) =>
      Object.entries(policy.environment?.set ?? {}).flatMap(([name, value]): Hit[] => {
        const host = pointsAtHost(value);
        return host ? [{ pointer: pointerJoin('/environment/set', name), message: `environment.set.${name} points at the host's ${host}` }] : [];
      }),
  },
];
