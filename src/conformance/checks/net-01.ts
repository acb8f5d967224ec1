import type { ProbeCheck } from '../check.js';

const LOOPBACK = { name: 'lo', up: true, addresses: ['127.0.0.1/8', '::1/128'] };
const SLIRP = { name: 'tap0', up: true };

export const check: ProbeCheck = {
  id: 'NET-01', kind: 'probe', property: "network as planned: 'none' leaves only lo, up, no route, 127.0.0.1 refuses; 'slirp' adds tap0 with a default route",
  proves: ['network.mode'],
  evaluate: ({ plan, obs }) => {
    const { mode } = plan.network;
    if (mode === 'host') return { skip: "the policy uses the host's network" };
    const observedIfs = obs.interfaces.map((i) => (i.name === 'lo' ? i : { name: i.name, up: i.up }));
    if (mode === 'none') {
      return {
        expected: { interfaces: [LOOPBACK], routes: [], loopback: 'ECONNREFUSED' },
        observed: { interfaces: observedIfs, routes: obs.routes, loopback: obs.loopbackConnect },
      };
    }
    // slirp4netns: 10.0.2.0/24 on tap0, gateway 10.0.2.2 (00000000 is the default destination).
    return {
      expected: { interfaces: [LOOPBACK, SLIRP], defaultRoute: 'tap0 0202000A', loopback: 'ECONNREFUSED' },
      observed: {
        interfaces: observedIfs,
        defaultRoute: obs.routes.find((r) => r.split(' ')[1] === '00000000')?.replace(/^(\S+) 00000000 (\S+)$/, '$1 $2') ?? 'none',
        loopback: obs.loopbackConnect,
      },
    };
  },
};
