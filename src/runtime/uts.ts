import { sethostname, setdomainname } from '../ffi/libc.js';
import type { Plan } from '../plan/types.js';

export function applyUts(plan: Plan): void {
  sethostname(plan.hostname);
  setdomainname(plan.domainname);
}
