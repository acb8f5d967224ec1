// Network inside the build's own namespace. none: only lo, up. slirp: the supervisor made the
// namespace and had slirp4netns configure it (tap0, address, default route) before it sent the
// request; init only checks that it is so, and fails closed otherwise.
import { IFF_UP } from '../ffi/arch.js';
import { bringInterfaceUp, interfaceFlags } from '../ffi/net.js';
import type { Plan } from '../plan/types.js';

export const SLIRP_INTERFACE = 'tap0';

/** slirp4netns must attach before the builder starts, so the supervisor makes the namespace, not init. */
export function supervisorMakesNetns(plan: Plan): boolean {
  return plan.network.mode === 'slirp';
}

export function applyNetwork(plan: Plan): void {
  if (plan.network.mode === 'host') return;
  bringInterfaceUp('lo');
  if (plan.network.mode === 'slirp' && !(interfaceFlags(SLIRP_INTERFACE) & IFF_UP)) {
    throw new Error(`network: slirp: ${SLIRP_INTERFACE} is not up; slirp4netns did not configure the build's network`);
  }
}
