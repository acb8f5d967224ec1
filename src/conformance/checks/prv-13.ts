import { randomBytes } from 'node:crypto';
import { KEY_SPEC, KEYCTL, SYS } from '../../ffi/arch.js';
import { rawSyscall } from '../calls.js';
import { resolvePool } from '../../pool/resolve.js';
import type { SandboxCheck } from '../check.js';
import { keysPlan, keysReport } from '../sandbox.js';
import { plannedAnswer } from './util.js';

export const check: SandboxCheck = {
  id: 'PRV-13', kind: 'sandbox', property: "no key of the supervisor's session keyring reaches a build, and none a build planted in its user's keyrings reaches the next build of that user",
  attack: "a build reads a key from the session keyring it inherited from the daemon, or plants one in the pool user's user keyring for the next build under that UID",
  proves: ['runtime: new session keyring, user keyrings cleared'],
  run: async ({ subject, run }) => {
    const token = randomBytes(6).toString('hex');
    const supervisorKey = `stockade-conformance-supervisor-${token}`;
    const buildKey = `stockade-conformance-build-${token}`;
    // In this process's session keyring (one is made if it has none), which runBuild passes on.
    const planted = rawSyscall(SYS.add_key, 'user', supervisorKey, Buffer.from('the supervisor\'s'), 16, KEY_SPEC.SESSION);
    if (planted.result === -1) return { cannotRun: `add_key in the conformance run's session keyring failed (errno ${planted.errno})` };
    try {
      const first = keysReport(await run(keysPlan(subject, { find: [supervisorKey], plant: buildKey })));
      const member = resolvePool(subject.plan.identity).members.find((m) => m.uid === first.uid);
      if (!member) throw new Error(`the keyring probe ran as ${first.uid}, not a member of the pool`);
      // The same user again, as a later build would get it.
      const again = keysPlan(subject, { find: [buildKey] });
      again.identity = { ...again.identity, pool: { kind: 'range', first: member.uid, count: 1, gid: member.gid } };
      const second = keysReport(await run(again));
      const search = plannedAnswer(subject.plan, 'keyctl', [KEYCTL.SEARCH]);
      const absent = search === 'ok' ? 'ENOKEY' : search;
      const everywhere = (answer: string) => ({ session: answer, user: answer, userSession: answer });
      const add = plannedAnswer(subject.plan, 'add_key', []);
      return {
        expected: { supervisorKey: everywhere(absent), planted: { user: add, userSession: add }, earlierBuildKey: everywhere(absent) },
        observed: { supervisorKey: first.found[supervisorKey], planted: first.planted, earlierBuildKey: second.found[buildKey] },
      };
    } finally {
      rawSyscall(SYS.keyctl, KEYCTL.INVALIDATE, planted.result);
    }
  },
};
