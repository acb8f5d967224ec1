// Who the build runs as: a pool UID that must never be root, a system account or a person.
import type { Hit, Rule } from '../types.js';

/** Below this, UIDs and GIDs belong to the system (login.defs SYS_UID_MAX + 1). */
const FIRST_REGULAR_ID = 1000;
const NOBODY = 65534;

export const identityRules: Rule[] = [
  {
    id: 'STK-ID-001',
    concern: 'identity',
    severity: 'high',
    title: 'The UID range of the pool reaches system or shared IDs',
    why: 'A build running as a system UID or GID (below 1000, or nobody 65534) owns or can signal what that account owns on the host: daemons, their files and sockets. UID 0 is refused by the policy language itself.',
    fix: 'Move users.range to IDs no account uses, e.g. first: 30001 with gid: 30000.',
    check: ({ plan }) => {
      const pool = plan.identity.pool;
      if (pool.kind !== 'range') return [];
      const hits: Hit[] = [];
      const last = pool.first + pool.count - 1;
      if (pool.first < FIRST_REGULAR_ID) hits.push({ pointer: '/users/range/first', message: `the pool's UIDs start at ${pool.first}, in the system range (below ${FIRST_REGULAR_ID})` });
      else if (pool.first <= NOBODY && last >= NOBODY) hits.push({ pointer: '/users/range/count', message: `the pool's UIDs ${pool.first}-${last} include nobody (${NOBODY})` });
      if (pool.gid < FIRST_REGULAR_ID || pool.gid === NOBODY) hits.push({ pointer: '/users/range/gid', message: `the pool's GID ${pool.gid} is a system or shared group` });
      return hits;
    },
  },
  {
    id: 'STK-ID-002',
    concern: 'identity',
    severity: 'info',
    title: 'Whether pool UIDs are login accounts is only known on the host',
    why: 'A pool UID that is also a person\'s or a service\'s account lets a build act as them on the host (their files, their processes). The policy cannot tell; the host\'s account database can.',
    fix: 'Run `stockade pool check` on each host that uses the policy.',
    check: ({ plan }) => {
      const pool = plan.identity.pool;
      return pool.kind === 'group'
        ? [{ pointer: '/users/group', message: `members of group ${pool.group} must not be login accounts: check with \`stockade pool check\`` }]
        : [{ pointer: '/users/range', message: `UIDs ${pool.first}-${pool.first + pool.count - 1} must belong to no account: check with \`stockade pool check\`` }];
    },
  },
  {
    id: 'STK-ID-003',
    concern: 'identity',
    severity: 'info',
    title: "The build user's supplementary groups are kept",
    why: 'The build gets every permission its host groups grant (guix keeps them so builds can use /dev/kvm): a build user added to a powerful group (disk, docker) hands that power to builds.',
    fix: 'Keep build users out of privileged groups, or set users.supplementary_groups: none.',
    check: ({ plan }) =>
      plan.identity.supplementaryGroups === 'pool' ? [{ pointer: '/users/supplementary_groups', message: "the build user's supplementary groups from the host are kept" }] : [],
  },
];
