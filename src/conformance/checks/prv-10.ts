import type { ProbeCheck } from '../check.js';
import { NS_FILE } from './util.js';

export const check: ProbeCheck = {
  id: 'PRV-10', kind: 'probe', property: "the build has its own namespaces as planned (pid, mount, uts, ipc, net, cgroup)", proves: ['namespaces', 'network.mode'],
  evaluate: ({ plan, obs, host }) => {
    const kinds = Object.entries(NS_FILE);
    return {
      expected: Object.fromEntries(kinds.map(([kind]) => [kind, plan.namespaces.includes(kind as never) ? 'own' : "the host's"])),
      observed: Object.fromEntries(kinds.map(([kind, file]) => [kind, obs.namespaces[file] === host.namespaces[file] ? "the host's" : 'own'])),
    };
  },
};
