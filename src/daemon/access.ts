// Access control: who may use which policy, and what they may put in a spec, from the peer's
// kernel-reported credentials (SO_PEERCRED), never from anything the client says.
import { getgrouplist, getpwuid } from '../ffi/nss.js';
import { isUnder, normalise } from '../policy/semantics.js';
import { envAllowed } from '../plan/spec.js';
import type { BuildSpec } from '../policy/types.js';
import type { AccessRule } from './config.js';

export interface Peer {
  pid: number;
  uid: number;
  gid: number;
  /** The peer's primary gid and the groups its account belongs to. */
  groups: number[];
  /** Account name, or the uid as text. */
  name: string;
}

export function describePeer(cred: { pid: number; uid: number; gid: number }): Peer {
  const account = getpwuid(cred.uid);
  const groups = new Set([cred.gid]);
  if (account) for (const gid of getgrouplist(account.name, cred.gid)) groups.add(gid);
  return { ...cred, groups: [...groups], name: account?.name ?? String(cred.uid) };
}

export type Decision = { allowed: true; rule: AccessRule } | { allowed: false; code: 'denied' | 'refused-spec'; message: string };

function matches(rule: AccessRule, peer: Peer, policy: string): boolean {
  if (!rule.policies.includes('*') && !rule.policies.includes(policy)) return false;
  if (rule.uids === 'any' || rule.uids.includes(peer.uid)) return true;
  return rule.gids.some((gid) => peer.groups.includes(gid));
}

/** The first rule naming the policy and the peer decides; its spec limits then apply on top of the policy's. */
export function decide(rules: AccessRule[], peer: Peer, policy: string, spec: BuildSpec): Decision {
  const rule = rules.find((r) => matches(r, peer, policy));
  if (!rule) return { allowed: false, code: 'denied', message: `user ${peer.name} (uid ${peer.uid}) may not use policy '${policy}'` };
  const problems: string[] = [];
  if (rule.env) {
    for (const name of Object.keys(spec.env ?? {})) {
      if (!envAllowed(name, rule.env)) problems.push(`environment variable ${name} is not allowed for you (daemon config ${rule.where}: ${rule.env.join(', ') || 'none'})`);
    }
  }
  const under = (kind: 'input' | 'output', paths: string[] | undefined, prefixes: string[] | undefined) => {
    if (!prefixes) return;
    for (const path of paths ?? []) {
      if (!path.startsWith('/') || !prefixes.some((p) => isUnder(normalise(path), normalise(p)))) {
        problems.push(`${kind} ${path} is not under ${prefixes.join(', ')} (daemon config ${rule.where})`);
      }
    }
  };
  under('input', spec.inputs, rule.inputsUnder);
  under('output', spec.outputs, rule.outputsUnder);
  if (problems.length) return { allowed: false, code: 'refused-spec', message: problems.map((p) => `refused: ${p}`).join('\n') };
  return { allowed: true, rule };
}
