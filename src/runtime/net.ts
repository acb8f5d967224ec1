// Network inside the build's own namespace: only lo, up.
import { bringInterfaceUp } from '../ffi/net.js';
import type { Plan } from '../plan/types.js';

export function applyNetwork(plan: Plan): void {
  if (plan.network.mode === 'host') return;
  bringInterfaceUp('lo');
}
