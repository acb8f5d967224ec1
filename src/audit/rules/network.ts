// What the build can reach over the network, and what it is called.
import { DEFAULTS } from '../../plan/defaults.js';
import type { Hit, Rule } from '../types.js';

export const networkRules: Rule[] = [
  {
    id: 'STK-NET-001',
    concern: 'network',
    severity: 'critical',
    title: "The build shares the host's network namespace",
    why: "In the host's network namespace the build reaches every service listening on the host's loopback and the host's abstract unix sockets (guix-daemon's 2025 advisory for fixed-output builds), can bind ports, and can send traffic anywhere.",
    fix: 'Use network: none, or for a fixed-output build network: slirp (a private namespace behind slirp4netns).',
    check: ({ plan }) =>
      plan.network.mode === 'host'
        ? [{ pointer: '/network', message: plan.policy.fixedOutput ? "the build uses the host's network" : "the build uses the host's network outside a fixed-output policy" }]
        : [],
  },
  {
    id: 'STK-NET-002',
    concern: 'network',
    severity: 'high',
    title: "The host's loopback is reachable through slirp4netns",
    why: 'With allow_host_loopback, 10.0.2.2 leads to services listening on the host\'s 127.0.0.1, which usually trust local clients (databases, the stockade daemon\'s helpers, development servers).',
    fix: 'Set network.allow_host_loopback: false (the default).',
    check: ({ plan }) =>
      plan.network.mode === 'slirp' && plan.network.allowHostLoopback ? [{ pointer: '/network/allow_host_loopback', message: "the host's loopback is reachable from the build through 10.0.2.2" }] : [],
  },
  {
    id: 'STK-NET-003',
    concern: 'network',
    severity: 'medium',
    title: 'The build can reach the network through slirp4netns',
    why: 'A fixed-output build may download, which is what it is for, but it may also send out anything it can read; only the hash check keeps the result honest.',
    fix: 'Use this policy only for fixed-output builds; everything else should use network: none.',
    check: ({ plan }) => (plan.network.mode === 'slirp' ? [{ pointer: '/network', message: 'the build can reach the network through slirp4netns' }] : []),
  },
  {
    id: 'STK-NET-005',
    concern: 'network',
    severity: 'high',
    title: 'The build can open vsock sockets',
    why: "A network namespace does not isolate AF_VSOCK: the build shares the host's vsock port space, can reach the hypervisor's services (and, on a VM host, its guests'), and can talk to other builds through it.",
    fix: 'Remove network.vsock (closed by default).',
    check: ({ plan }) => (plan.network.vsock ? [{ pointer: '/network/vsock', message: "socket(AF_VSOCK) works in the build: it reaches the host's vsock port space" }] : []),
  },
  {
    id: 'STK-NET-004',
    concern: 'network',
    severity: 'info',
    title: "The host or domain name differs from guix-daemon's",
    why: 'guix-daemon names every build host `localhost`, domain `(none)`; another name can leak the host\'s identity into build results and makes them less reproducible.',
    fix: 'Set hostname: localhost and domainname: (none) (the defaults).',
    check: ({ plan }) => {
      const hits: Hit[] = [];
      if (plan.hostname !== DEFAULTS.hostname) hits.push({ pointer: '/hostname', message: `the build's host name is ${plan.hostname}, not ${DEFAULTS.hostname}` });
      if (plan.domainname !== DEFAULTS.domainname) hits.push({ pointer: '/domainname', message: `the build's domain name is ${plan.domainname}, not ${DEFAULTS.domainname}` });
      return hits;
    },
  },
];
