// Network inside the build's own namespace: only lo, up. slirp is not implemented yet, and a
// policy asking for it must not silently get something else: the build does not start.
import { bringInterfaceUp } from '../ffi/net.js';
import type { Plan } from '../plan/types.js';

export function applyNetwork(plan: Plan): void {
  if (plan.network.mode === 'host') return;
  if (plan.network.mode === 'slirp') throw new Error('network: slirp (slirp4netns) is not implemented yet; refusing to start the build');
  bringInterfaceUp('lo');
}
