// Access control: who may use which policy, and what they may put in a spec, from the peer's
// kernel-reported credentials (SO_PEERCRED), never from anything the client says.
import { getgrouplist, getpwnam, getpwuid } from '../ffi/nss.js';
import { isUnder, normalise } from '../policy/semantics.js';
import { envAllowed } from '../plan/spec.js';
import type { BuildSpec } from '../policy/types.js';
import { PLACEHOLDER, type AccessRule } from './config.js';

export interface Peer {
  pid: number;
  uid: number;
  gid: number;
  /** The peer's primary gid and the groups its account belongs to. */
  groups: number[];
  /** Account name, or the uid as text. */
  name: string;
  /** What `{user}` stands for: the account name, only when NSS maps it back to this uid. */
  account?: string;
}

export function describePeer(cred: { pid: number; uid: number; gid: number }): Peer {
  const account = getpwuid(cred.uid);
  const groups = new Set([cred.gid]);
  if (account) for (const gid of getgrouplist(account.name, cred.gid)) groups.add(gid);
  // A name that NSS gives another uid too (duplicate entries) would share that uid's prefix.
  const own = account !== null && getpwnam(account.name)?.uid === cred.uid;
  return { ...cred, groups: [...groups], name: account?.name ?? String(cred.uid), ...(own && { account: account.name }) };
}

export type Decision =
  | { allowed: true; rule: AccessRule; inputsUnder?: string[]; outputsUnder?: string[] }
  | { allowed: false; code: 'denied' | 'refused-spec'; message: string };

/** A user name that stays one plain path component: no '/', not '.' or '..', no space, control or glob character. */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,254}$/;

/** The rule's prefixes for this peer, `{user}` and `{uid}` substituted; a string says why they cannot be. */
function substitute(templates: string[], peer: Peer): string[] | string {
  const prefixes: string[] = [];
  for (const template of templates) {
    if (template.includes('{user}')) {
      if (peer.account === undefined) return `uid ${peer.uid} has no user name of its own for {user} in outputs_under ${template}`;
      if (!SAFE_NAME.test(peer.account)) return `user name ${JSON.stringify(peer.account)} is not a safe path component for {user} in outputs_under ${template}`;
    }
    prefixes.push(normalise(template.replace(PLACEHOLDER, (p) => (p === '{user}' ? peer.account! : String(peer.uid)))));
  }
  return prefixes;
}

/** A '.' or '..' component would make a lexical prefix check say nothing about where the path leads. */
function hasDotComponent(path: string): boolean {
  return path.split('/').some((c) => c === '.' || c === '..');
}

function matches(rule: AccessRule, peer: Peer, policy: string): boolean {
  if (!rule.policies.includes('*') && !rule.policies.includes(policy)) return false;
  if (rule.uids === 'any' || rule.uids.includes(peer.uid)) return true;
  return rule.gids.some((gid) => peer.groups.includes(gid));
}

/** The first rule naming the policy and the peer decides; its spec limits then apply on top of the policy's. */
export function decide(rules: AccessRule[], peer: Peer, policy: string, spec: BuildSpec): Decision {
  const rule = rules.find((r) => matches(r, peer, policy));
  if (!rule) return { allowed: false, code: 'denied', message: `user ${peer.name} (uid ${peer.uid}) may not use policy '${policy}'` };
  const outputsUnder = rule.outputsUnder && substitute(rule.outputsUnder, peer);
  if (typeof outputsUnder === 'string') {
    return { allowed: false, code: 'denied', message: `user ${peer.name} (uid ${peer.uid}) may not use policy '${policy}': ${outputsUnder} (daemon config ${rule.where})` };
  }
  const problems: string[] = [];
  if (rule.env) {
    for (const name of Object.keys(spec.env ?? {})) {
      if (!envAllowed(name, rule.env)) problems.push(`environment variable ${name} is not allowed for you (daemon config ${rule.where}: ${rule.env.join(', ') || 'none'})`);
    }
  }
  const under = (kind: 'input' | 'output', paths: string[] | undefined, prefixes: string[] | undefined, templates: string[] | undefined) => {
    if (!prefixes) return;
    const written = templates?.some((t) => t.includes('{')) ? `: ${kind}s_under ${templates.join(', ')}` : '';
    for (const path of paths ?? []) {
      if (!path.startsWith('/') || hasDotComponent(path) || !prefixes.some((p) => isUnder(normalise(path), normalise(p)))) {
        problems.push(`${kind} ${path} is not under ${prefixes.join(', ')} (daemon config ${rule.where}${written})`);
      }
    }
  };
  under('input', spec.inputs, rule.inputsUnder, undefined);
  under('output', spec.outputs, outputsUnder, rule.outputsUnder);
  if (problems.length) return { allowed: false, code: 'refused-spec', message: problems.map((p) => `refused: ${p}`).join('\n') };
  return { allowed: true, rule, ...(rule.inputsUnder && { inputsUnder: rule.inputsUnder.map(normalise) }), ...(outputsUnder && { outputsUnder }) };
}
