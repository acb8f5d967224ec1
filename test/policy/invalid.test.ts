// Invalid policies: each is refused with exactly these diagnostics, all at once, each as
// FILE:LINE:COL: message (FILE relative to the case's directory). A message or a position
// that changes must change here too: they are what an admin reads.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadPolicy } from '../../src/policy/load.js';
import { formatDiagnostic, PolicyError } from '../../src/policy/errors.js';

interface Case {
  name: string;
  yaml: string;
  /** Further files of the case (bases it extends). */
  files?: Record<string, string>;
  errors: string[];
}

/** The two required keys, so that each case shows only what it is about. */
const H = 'stockade: 1\nname: t\n';

const CASES: Case[] = [
  {
    name: 'YAML syntax: unclosed flow sequence',
    yaml: H + 'devices: [null, zero\n',
    errors: [
      'policy.yaml:4:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
  },
  {
    name: 'YAML syntax: tab indentation',
    yaml: H + 'users:\n\tgroup: g\n',
    errors: [
      'policy.yaml:4:1: YAML syntax error: Tabs are not allowed as indentation',
    ],
  },
  {
    name: 'YAML syntax: two documents',
    yaml: H + '---\nstockade: 1\n',
    errors: [
      'policy.yaml:3:1: YAML syntax error: a policy file holds a single YAML document',
    ],
  },
  {
    name: 'YAML syntax: unterminated quoted string',
    yaml: H + 'hostname: "localhost\n',
    errors: [
      'policy.yaml:4:1: YAML syntax error: Missing closing "quote',
    ],
  },
  {
    name: 'duplicate key at the top level',
    yaml: H + 'hostname: a\nhostname: b\n',
    errors: [
      'policy.yaml:4:1: duplicate key \'hostname\'',
    ],
  },
  {
    name: 'duplicate key in a nested map',
    yaml: H + 'users:\n  group: a\n  state_dir: /x\n  group: b\n',
    errors: [
      'policy.yaml:6:3: duplicate key \'group\'',
    ],
  },
  {
    name: 'unknown key at the top level',
    yaml: H + 'hostnme: localhost\n',
    errors: [
      'policy.yaml:3:1: unknown key \'hostnme\'',
    ],
  },
  {
    name: 'unknown key in a nested map',
    yaml: H + 'filesystem:\n  root: { size: 64M, readonly: true, mod: "0555" }\n',
    errors: [
      'policy.yaml:4:38: filesystem.root: unknown key \'mod\'',
    ],
  },
  {
    name: 'unknown key in a list item',
    yaml: H + 'filesystem:\n  paths:\n    - { source: /bin, readnly: true }\n',
    errors: [
      'policy.yaml:5:23: filesystem.paths[0]: unknown key \'readnly\'',
    ],
  },
  {
    name: 'wrong type: string expected',
    yaml: H + 'hostname: 3\n',
    errors: [
      'policy.yaml:3:11: hostname: expected a string, got integer',
    ],
  },
  {
    name: 'wrong type: map expected',
    yaml: H + 'filesystem: [1]\n',
    errors: [
      'policy.yaml:3:13: filesystem: expected a map, got list',
    ],
  },
  {
    name: 'wrong type: boolean expected',
    yaml: H + 'proc: { mount: "yes" }\n',
    errors: [
      'policy.yaml:3:16: proc.mount: expected true or false, got string',
    ],
  },
  {
    name: 'wrong type: integer expected',
    yaml: H + 'timeouts: { total: 1.5 }\n',
    errors: [
      'policy.yaml:3:20: timeouts.total: expected an integer, got number',
    ],
  },
  {
    name: 'wrong type: list expected',
    yaml: H + 'environment: { pass: http_proxy }\n',
    errors: [
      'policy.yaml:3:22: environment.pass: expected a list, got string',
    ],
  },
  {
    name: 'wrong type fitting no oneOf branch',
    yaml: H + 'network: 5\n',
    errors: [
      'policy.yaml:3:10: network: 5 is not one of: none, slirp, host',
    ],
  },
  {
    name: 'bad enum: network',
    yaml: H + 'network: internet\n',
    errors: [
      'policy.yaml:3:10: network: "internet" is not one of: none, slirp, host',
    ],
  },
  {
    name: 'bad enum: network.mode',
    yaml: H + 'network: { mode: tap }\n',
    errors: [
      'policy.yaml:3:18: network.mode: "tap" is not one of: none, slirp, host',
    ],
  },
  {
    name: 'bad enum: personality',
    yaml: H + 'personality: [ADDR_NO_RANDOMIZE, NO_ASLR]\n',
    errors: [
      'policy.yaml:3:34: personality[1]: "NO_ASLR" is not one of: ADDR_NO_RANDOMIZE, PER_LINUX32, READ_IMPLIES_EXEC, ADDR_COMPAT_LAYOUT, MMAP_PAGE_ZERO, ADDR_LIMIT_3GB, SHORT_INODE, WHOLE_SECONDS, STICKY_TIMEOUTS, ADDR_LIMIT_32BIT',
    ],
  },
  {
    name: 'const: stockade 2',
    yaml: 'stockade: 2\nname: t\n',
    errors: [
      'policy.yaml:1:11: stockade: must be 1, got 2',
    ],
  },
  {
    name: 'const: environment.clear false',
    yaml: H + 'environment: { clear: false }\n',
    errors: [
      'policy.yaml:3:23: environment.clear: must be true, got false',
    ],
  },
  {
    name: 'const: inputs.readonly false',
    yaml: H + 'filesystem:\n  inputs: { under: [/gnu/store], readonly: false }\n',
    errors: [
      'policy.yaml:4:44: filesystem.inputs.readonly: must be true, got false',
    ],
  },
  {
    name: 'bad path: relative',
    yaml: H + 'filesystem:\n  paths:\n    - { source: bin/sh }\n',
    errors: [
      'policy.yaml:5:17: filesystem.paths[0].source: must be an absolute path without \'..\', got "bin/sh"',
    ],
  },
  {
    name: 'bad path: ..',
    yaml: H + 'filesystem:\n  paths:\n    - { source: /gnu/store/../etc, target: /store }\n',
    errors: [
      'policy.yaml:5:17: filesystem.paths[0].source: must be an absolute path without \'..\', got "/gnu/store/../etc"',
    ],
  },
  {
    name: 'bad path: etc.host outside /etc',
    yaml: H + 'filesystem:\n  etc: { host: [/usr/share/zoneinfo] }\n',
    errors: [
      'policy.yaml:4:17: filesystem.etc.host[0]: must be a path under /etc without \'..\', got "/usr/share/zoneinfo"',
    ],
  },
  {
    name: 'bad mode',
    yaml: H + 'filesystem:\n  tmp: { mode: "1778" }\n',
    errors: [
      'policy.yaml:4:16: filesystem.tmp.mode: must be an octal mode such as "0555", got "1778"',
    ],
  },
  {
    name: 'bad mode given as a number',
    yaml: H + 'filesystem:\n  root: { mode: 555 }\n',
    errors: [
      'policy.yaml:4:17: filesystem.root.mode: expected a string, got integer',
    ],
  },
  {
    name: 'bad size',
    yaml: H + 'filesystem:\n  tmp: { size: 150% }\n',
    errors: [
      'policy.yaml:4:16: filesystem.tmp.size: must be a size such as 512M, 2G or 50%, got "150%"',
    ],
  },
  {
    name: 'output and build dir limits: sizes such as 4G, at most 2^53 bytes; an input cap ≥ 0',
    yaml: H + 'limits:\n  output_bytes: 4GB\n  build_dir_bytes: 9999999999T\n  inputs: -1\n',
    errors: [
      'policy.yaml:4:17: limits.output_bytes: must be a number of bytes such as 4G, got "4GB"',
      'policy.yaml:6:11: limits.inputs: must be >= 0, got -1',
    ],
  },
  {
    name: 'a size beyond 2^53 bytes',
    yaml: H + 'limits:\n  build_dir_bytes: 9999999999T\n',
    errors: ['policy.yaml:4:20: limits.build_dir_bytes: 9999999999T is more than 2^53 bytes'],
  },
  {
    name: 'bad memory size',
    yaml: H + 'limits: { cgroup: { memory: 4GB } }\n',
    errors: [
      'policy.yaml:3:29: limits.cgroup.memory: must be a number of bytes such as 4G, got "4GB"',
    ],
  },
  {
    name: 'bad hostname',
    yaml: H + 'hostname: build_host\n',
    errors: [
      'policy.yaml:3:11: hostname: must be a valid host name, got "build_host"',
    ],
  },
  {
    name: 'bad env name in set',
    yaml: H + 'environment:\n  set: { "NIX-STORE": /gnu/store }\n',
    errors: [
      'policy.yaml:4:10: environment.set: invalid key \'NIX-STORE\': must be an environment variable name',
    ],
  },
  {
    name: 'bad env name in pass',
    yaml: H + 'environment:\n  pass: [http-proxy]\n',
    errors: [
      'policy.yaml:4:10: environment.pass[0]: must be an environment variable name, got "http-proxy"',
    ],
  },
  {
    name: 'unknown env placeholder',
    yaml: H + 'environment:\n  set: { NIX_BUILD_CORES: "{jobs}" }\n',
    errors: [
      'policy.yaml:4:27: environment.set.NIX_BUILD_CORES: unknown placeholder {jobs} (use {cores}, {name} or {build_dir})',
    ],
  },
  {
    name: 'unknown device name',
    yaml: H + 'devices: ["null", sda]\n',
    errors: [
      'policy.yaml:3:19: devices[1]: "sda" is not one of: null, zero, full, random, urandom, tty, kvm, fuse, net/tun, pts, shm, fd',
    ],
  },
  {
    name: 'unknown device name in a map',
    yaml: H + 'devices: [{ name: nvidia0, optional: true }]\n',
    errors: [
      'policy.yaml:3:19: devices[0].name: "nvidia0" is not one of: null, zero, full, random, urandom, tty, kvm, fuse, net/tun, pts, shm, fd',
    ],
  },
  {
    name: 'bare null device',
    yaml: H + 'devices: [null, zero]\n',
    errors: [
      'policy.yaml:3:11: devices[0]: null is not one of: null, zero, full, random, urandom, tty, kvm, fuse, net/tun, pts, shm, fd (write "null" in quotes for the string)',
    ],
  },
  {
    name: 'duplicate device',
    yaml: H + 'devices: [zero, "null", { name: zero, optional: true }]\n',
    errors: [
      'policy.yaml:3:25: devices[2]: \'zero\' is already listed at devices[0]',
    ],
  },
  {
    name: 'unknown syscall in deny',
    yaml: H + 'seccomp:\n  deny: [mount, mount2]\n',
    errors: [
      'policy.yaml:4:17: seccomp.deny[1]: unknown syscall \'mount2\'',
    ],
  },
  {
    name: 'unknown syscall in a rule',
    yaml: H + 'seccomp:\n  rules:\n    - { syscall: clone4, action: errno }\n',
    errors: [
      'policy.yaml:5:18: seccomp.rules[0].syscall: unknown syscall \'clone4\' (mark the rule optional: true to skip it where unknown)',
    ],
  },
  {
    name: 'unknown syscall in a rule list',
    yaml: H + 'seccomp:\n  rules:\n    - { syscall: [chmod, chmodat], action: errno }\n',
    errors: [
      'policy.yaml:5:26: seccomp.rules[0].syscall: unknown syscall \'chmodat\' (mark the rule optional: true to skip it where unknown)',
    ],
  },
  {
    name: 'unknown syscall: optional rule accepted, deny still checked',
    yaml: H + 'seccomp:\n  deny: [frobnicate]\n  rules:\n    - { syscall: [chmod, chmodat3], action: errno, optional: true }\n',
    errors: [
      'policy.yaml:4:10: seccomp.deny[0]: unknown syscall \'frobnicate\'',
    ],
  },
  {
    name: 'unknown errno (section)',
    yaml: H + 'seccomp:\n  errno: EWHATEVER\n  deny: [mount]\n',
    errors: [
      'policy.yaml:4:10: seccomp.errno: unknown errno \'EWHATEVER\'',
    ],
  },
  {
    name: 'unknown errno (rule)',
    yaml: H + 'seccomp:\n  rules:\n    - { syscall: clone3, action: errno, errno: ENOSYSCALL }\n',
    errors: [
      'policy.yaml:5:48: seccomp.rules[0].errno: unknown errno \'ENOSYSCALL\'',
    ],
  },
  {
    name: 'errno without action errno',
    yaml: H + 'seccomp:\n  rules:\n    - { syscall: clone3, action: kill_process, errno: ENOSYS }\n',
    errors: [
      'policy.yaml:5:48: seccomp.rules[0]: errno is only meaningful with action: errno',
    ],
  },
  {
    name: 'masked_eq without mask',
    yaml: H + 'seccomp:\n  rules:\n    - syscall: ioctl\n      action: errno\n      args: [{ index: 1, op: masked_eq, value: 0x5412 }]\n',
    errors: [
      'policy.yaml:7:14: seccomp.rules[0].args[0]: masked_eq needs a mask',
    ],
  },
  {
    name: 'mask without masked_eq',
    yaml: H + 'seccomp:\n  rules:\n    - syscall: ioctl\n      action: errno\n      args: [{ index: 1, op: eq, value: 0x5412, mask: 0xffffffff }]\n',
    errors: [
      'policy.yaml:7:49: seccomp.rules[0].args[0]: mask is only meaningful with op: masked_eq',
    ],
  },
  {
    name: 'arg value above 2^53',
    yaml: H + 'seccomp:\n  rules:\n    - syscall: ioctl\n      action: errno\n      args: [{ index: 1, op: eq, value: 18446744073709551615 }]\n',
    errors: [
      'policy.yaml:7:14: seccomp.rules[0].args[0]: values above 2^53 cannot be represented exactly',
    ],
  },
  {
    name: 'arg index out of range',
    yaml: H + 'seccomp:\n  rules:\n    - { syscall: ioctl, action: errno, args: [{ index: 6, op: eq, value: 1 }] }\n',
    errors: [
      'policy.yaml:5:56: seccomp.rules[0].args[0].index: must be <= 5, got 6',
    ],
  },
  {
    name: 'seccomp profile: missing file',
    yaml: H + 'seccomp:\n  profile: docker-default.json\n',
    errors: [
      'policy.yaml:4:12: seccomp.profile: cannot read docker-default.json: no such file',
    ],
  },
  {
    name: 'seccomp profile: a directory',
    yaml: H + 'seccomp:\n  profile: /tmp\n',
    errors: [
      'policy.yaml:4:12: seccomp.profile: cannot read /tmp: not a regular file (a directory)',
    ],
  },
  {
    name: 'seccomp profile: JSON syntax error, positioned in the profile',
    yaml: H + 'seccomp:\n  profile: p.json\n',
    files: { 'p.json': '{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": [\n    { "names": [tru], "action": "SCMP_ACT_ERRNO" }\n  ]\n}\n' },
    errors: [
      'policy.yaml:4:12: seccomp.profile: p.json:4:17: invalid JSON: expected a value, unexpected "t"',
    ],
  },
  {
    name: 'seccomp profile: JSON cut short',
    yaml: H + 'seccomp:\n  profile: p.json\n',
    files: { 'p.json': '{\n  "defaultAction": "SCMP_ACT_ALLOW",\n' },
    errors: [
      'policy.yaml:4:12: seccomp.profile: p.json:3:1: invalid JSON: expected a property name in double quotes, unexpected end of file',
    ],
  },
  {
    name: 'seccomp profile: a profile Stockade cannot import',
    yaml: H + 'seccomp:\n  profile: p.json\n',
    files: { 'p.json': JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, { names: ['ptrace'], action: 'SCMP_ACT_NOTIFY' }] }) },
    errors: [
      'policy.yaml:4:12: seccomp.profile: p.json: syscalls[1].action: unsupported action "SCMP_ACT_NOTIFY" (Stockade has no tracer or notify listener)',
    ],
  },
  {
    name: 'seccomp profile: an entry is checked even when its capability is not kept',
    yaml: H + 'seccomp:\n  profile: p.json\n',
    files: { 'p.json': JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['bpf'], action: 'SCMP_ACT_TRACE', includes: { caps: ['CAP_SYS_ADMIN'] } }] }) },
    errors: [
      'policy.yaml:4:12: seccomp.profile: p.json: syscalls[0].action: unsupported action "SCMP_ACT_TRACE" (Stockade has no tracer or notify listener)',
    ],
  },
  {
    name: 'seccomp profile: the policy\'s rules may only refuse',
    yaml: H + 'seccomp:\n  profile: p.json\n  rules:\n    - { syscall: ptrace, action: allow }\n',
    files: { 'p.json': JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] }) },
    errors: [
      "policy.yaml:6:34: seccomp.rules[0]: with seccomp.profile the policy's rules can only refuse (errno, trap, kill_thread, kill_process), not allow: the profile decides what is allowed",
    ],
  },
  {
    name: 'seccomp profile: a conditional refusal of a syscall an allowlist profile allows',
    yaml: H + 'seccomp:\n  profile: p.json\n  deny: [unshare]\n  rules:\n    - { syscall: [chmod, read], action: errno, args: [{ index: 1, op: masked_eq, mask: 2048, value: 2048 }] }\n',
    files: { 'p.json': JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, syscalls: [{ names: ['chmod', 'unshare'], action: 'SCMP_ACT_ALLOW' }] }) },
    errors: [
      'policy.yaml:7:7: seccomp.rules[0]: the profile allows chmod outright and the default (errno ENOSYS) refuses the rest; one filter cannot add a refusal under conditions to that (libseccomp would keep one rule or the other): refuse chmod outright in seccomp.deny, or drop this rule',
    ],
  },
  {
    name: 'unknown capability',
    yaml: H + 'capabilities: { bounding: [CAP_CHOWN, CAP_SYS_GOD] }\n',
    errors: [
      'policy.yaml:3:39: capabilities.bounding[1]: unknown capability \'CAP_SYS_GOD\'',
    ],
  },
  {
    name: 'capability not matching the name pattern',
    yaml: H + 'capabilities: { bounding: [chown] }\n',
    errors: [
      'policy.yaml:3:28: capabilities.bounding[0]: must be a capability name such as CAP_CHOWN, got "chown"',
    ],
  },
  {
    name: 'ambient not in bounding',
    yaml: H + 'capabilities:\n  bounding: [CAP_CHOWN]\n  ambient: [CAP_CHOWN, CAP_KILL]\n',
    errors: [
      'policy.yaml:5:24: capabilities.ambient[1]: \'CAP_KILL\' must also be in capabilities.bounding',
    ],
  },
  {
    name: 'network slirp without fixed_output',
    yaml: H + 'network: slirp\n',
    errors: [
      'policy.yaml:3:10: network: slirp needs fixed_output: true (only fixed-output builds, checked by hash, may reach a network)',
    ],
  },
  {
    name: 'network host without fixed_output',
    yaml: H + 'fixed_output: false\nnetwork: { mode: host }\n',
    errors: [
      'policy.yaml:3:15: fixed_output: false, but network: host (set at policy.yaml:4:10) needs fixed_output: true (only fixed-output builds, checked by hash, may reach a network)',
    ],
  },
  {
    name: 'allow_host_loopback without slirp',
    yaml: H + 'fixed_output: true\nnetwork: { mode: host, allow_host_loopback: true }\n',
    errors: [
      'policy.yaml:4:24: network.allow_host_loopback applies only to network mode slirp',
    ],
  },
  {
    name: 'resolv_conf slirp without slirp',
    yaml: H + 'filesystem:\n  etc: { resolv_conf: slirp }\n',
    errors: [
      'policy.yaml:4:23: filesystem.etc.resolv_conf: slirp needs network: slirp',
    ],
  },
  {
    name: 'hosts slirp without slirp',
    yaml: H + 'filesystem:\n  etc: { hosts: slirp }\n',
    errors: [
      'policy.yaml:4:17: filesystem.etc.hosts: slirp needs network: slirp',
    ],
  },
  {
    name: 'etc.files overriding a generated file',
    yaml: H + 'filesystem:\n  etc:\n    passwd: generated\n    files: { /etc/passwd: "root:x:0:0::/:/bin/sh\\n" }\n',
    errors: [
      'policy.yaml:6:14: filesystem.etc.files: /etc/passwd is already generated (set its own key to none first)',
    ],
  },
  {
    name: 'etc.files overriding a file generated by default',
    yaml: H + 'filesystem:\n  etc:\n    files:\n      /etc/motd: "hello\\n"\n      /etc/hosts: "10.0.0.1 cache\\n"\n',
    errors: [
      'policy.yaml:7:7: filesystem.etc.files: /etc/hosts is already generated (set its own key to none first)',
    ],
  },
  {
    name: 'etc.files with a path outside /etc',
    yaml: H + 'filesystem:\n  etc:\n    files: { /root/.netrc: "x" }\n',
    errors: [
      'policy.yaml:5:14: filesystem.etc.files: invalid key \'/root/.netrc\': must be a path under /etc without \'..\'',
    ],
  },
  {
    name: 'build_dir: unknown placeholder',
    yaml: H + 'filesystem:\n  build_dir: /tmp/guix-build-{name}.drv-{n}\n',
    errors: [
      'policy.yaml:4:14: filesystem.build_dir: unknown placeholder {n} (only {name})',
    ],
  },
  {
    name: 'build_dir: ..',
    yaml: H + 'filesystem:\n  build_dir: /tmp/../etc/{name}\n',
    errors: [
      'policy.yaml:4:14: filesystem.build_dir: must not contain \'..\'',
    ],
  },
  {
    name: 'build_dir: /tmp itself',
    yaml: H + 'filesystem:\n  build_dir: /tmp\n',
    errors: [
      'policy.yaml:4:14: filesystem.build_dir: must be a directory of its own, not /tmp',
    ],
  },
  {
    name: 'build_dir: relative',
    yaml: H + 'filesystem:\n  build_dir: build/{name}\n',
    errors: [
      'policy.yaml:4:14: filesystem.build_dir: must be an absolute path, got "build/{name}"',
    ],
  },
  {
    name: 'reserved mount targets',
    yaml: H + 'filesystem:\n  paths:\n    - { source: /proc }\n    - { source: /srv/etc, target: /etc/ }\n    - { source: /srv/root, target: / }\n',
    errors: [
      'policy.yaml:5:17: filesystem.paths[0]: /proc is set up by Stockade itself and cannot be bound over',
      'policy.yaml:6:35: filesystem.paths[1]: /etc is set up by Stockade itself and cannot be bound over',
      'policy.yaml:7:36: filesystem.paths[2]: / is set up by Stockade itself and cannot be bound over',
    ],
  },
  {
    name: 'duplicate path targets',
    yaml: H + 'filesystem:\n  paths:\n    - { source: /usr/bin }\n    - { source: /opt/bin, target: /usr//bin/ }\n',
    errors: [
      'policy.yaml:6:7: filesystem.paths[1]: target /usr/bin is already bound by filesystem.paths[0]',
    ],
  },
  {
    name: 'rlimit soft above hard',
    yaml: H + 'limits:\n  rlimits:\n    nofile: { soft: 65536, hard: 4096 }\n    core: { soft: unlimited, hard: 0 }\n',
    errors: [
      'policy.yaml:5:13: limits.rlimits.nofile: soft limit 65536 is above hard limit 4096',
      'policy.yaml:6:11: limits.rlimits.core: soft limit unlimited is above hard limit 0',
    ],
  },
  {
    name: 'unknown rlimit name',
    yaml: H + 'limits:\n  rlimits: { files: 4096 }\n',
    errors: [
      'policy.yaml:4:14: limits.rlimits: invalid key \'files\': must be one of: as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack',
    ],
  },
  {
    name: 'bad rlimit value',
    yaml: H + 'limits:\n  rlimits: { nofile: lots, core: -1 }\n',
    errors: [
      'policy.yaml:4:22: limits.rlimits.nofile: expected an integer or a map or "unlimited", got string "lots"',
      'policy.yaml:4:34: limits.rlimits.core: must be >= 0, got -1',
    ],
  },
  {
    name: 'seccomp with no_new_privs false',
    yaml: H + 'no_new_privs: false\nseccomp: { deny: [ptrace] }\n',
    errors: [
      'policy.yaml:3:15: no_new_privs: false is impossible with seccomp (an unprivileged builder can only load a filter under no_new_privs)',
    ],
  },
  {
    name: 'landlock with no_new_privs false',
    yaml: H + 'no_new_privs: false\nlandlock: { read: [/] }\n',
    errors: [
      'policy.yaml:3:15: no_new_privs: false is impossible with landlock (an unprivileged builder can only restrict itself under no_new_privs)',
    ],
  },
  {
    name: 'landlock: bad path and placeholder',
    yaml: H + 'landlock: { write: ["{tmp}", tmp] }\n',
    errors: [
      'policy.yaml:3:21: landlock.write[0]: must be an absolute path or one of {build_dir}, {inputs}, {outputs}, got "{tmp}"',
      'policy.yaml:3:30: landlock.write[1]: must be an absolute path or one of {build_dir}, {inputs}, {outputs}, got "tmp"',
    ],
  },
  {
    name: 'users: group and range',
    yaml: H + 'users:\n  group: guixbuild\n  range: { first: 30001, count: 32, gid: 30000 }\n',
    errors: [
      'policy.yaml:5:3: users: give either group or range, not both',
    ],
  },
  {
    name: 'users: range starting at uid 0',
    yaml: H + 'users:\n  range: { first: 0, count: 32, gid: 30000 }\n',
    errors: [
      'policy.yaml:4:19: users.range.first: must be >= 1, got 0',
    ],
  },
  {
    name: 'users: range without gid',
    yaml: H + 'users:\n  range: { first: 30001, count: 32 }\n',
    errors: [
      'policy.yaml:4:10: users.range: missing required key \'gid\'',
    ],
  },
  {
    name: 'users: passwd name and gecos',
    yaml: H + 'users:\n  passwd: { name: Builder, gecos: "a:b" }\n',
    errors: [
      'policy.yaml:4:19: users.passwd.name: must be an account name (lower case letters, digits, \'_\' and \'-\'), got "Builder"',
      'policy.yaml:4:35: users.passwd.gecos: must not contain \':\' or a line break, got "a:b"',
    ],
  },
  {
    name: 'anchors and aliases',
    yaml: H + 'hostname: &h localhost\ndomainname: *h\n',
    errors: [
      'policy.yaml:4:13: anchors and aliases are not allowed in policies (write the value out)',
    ],
  },
  {
    name: 'unknown tag',
    yaml: H + 'hostname: !!binary bG9jYWxob3N0\n',
    errors: [
      'policy.yaml:3:20: unknown tag !!binary',
    ],
  },
  {
    name: 'unknown custom tag',
    yaml: H + 'devices: !prepend [kvm]\n',
    errors: [
      'policy.yaml:3:19: unknown tag !prepend',
    ],
  },
  {
    name: '!append on a map',
    yaml: H + 'environment:\n  set: !append { FOO: bar }\n',
    errors: [
      'policy.yaml:4:16: !append applies to lists only',
    ],
  },
  {
    name: '!append on a scalar',
    yaml: H + 'hostname: !append localhost\n',
    errors: [
      'policy.yaml:3:19: !append applies to lists only',
    ],
  },
  {
    name: 'non-map document: list',
    yaml: '- stockade: 1\n- name: t\n',
    errors: [
      'policy.yaml:1:1: a policy must be a map of settings, got a list',
    ],
  },
  {
    name: 'non-map document: scalar',
    yaml: 'guix-default\n',
    errors: [
      'policy.yaml:1:1: a policy must be a map of settings, got string',
    ],
  },
  {
    name: 'empty file',
    yaml: '',
    errors: [
      'policy.yaml:1:1: a policy must be a map of settings, got an empty document',
    ],
  },
  {
    name: 'only comments',
    yaml: '# nothing here\n',
    errors: [
      'policy.yaml:1:1: a policy must be a map of settings, got an empty document',
    ],
  },
  {
    name: 'missing name',
    yaml: 'stockade: 1\ndescription: no name\n',
    errors: [
      'policy.yaml:1:1: missing required key \'name\'',
    ],
  },
  {
    name: 'missing stockade',
    yaml: 'name: t\n',
    errors: [
      'policy.yaml:1:1: missing required key \'stockade\'',
    ],
  },
  {
    name: 'missing both',
    yaml: 'description: nothing required\n',
    errors: [
      'policy.yaml:1:1: missing required key \'stockade\'',
      'policy.yaml:1:1: missing required key \'name\'',
    ],
  },
  {
    name: 'bad policy name',
    yaml: 'stockade: 1\nname: Guix Default\n',
    errors: [
      'policy.yaml:2:7: name: must be lower case letters, digits, \'.\', \'_\' and \'-\', starting with a letter or digit, got "Guix Default"',
    ],
  },
  {
    name: 'extends: not a string',
    yaml: H + 'extends: [a, b]\n',
    errors: [
      'policy.yaml:3:10: extends: expected a policy name or path',
    ],
  },
  {
    name: 'non-string key',
    yaml: H + '[a, b]: 1\n',
    errors: [
      'policy.yaml:3:1: keys must be plain strings',
    ],
  },
  {
    name: '__proto__ key',
    yaml: H + 'users: { __proto__: { group: x } }\n',
    errors: [
      'policy.yaml:3:10: \'__proto__\' is not a valid key',
    ],
  },
  {
    name: 'non-finite number',
    yaml: H + 'oom_score_adj: .inf\n',
    errors: [
      'policy.yaml:3:16: numbers must be finite',
    ],
  },
  {
    name: 'nesting too deep',
    yaml: H + 'description: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n',
    errors: [
      'policy.yaml:3:78: nesting deeper than 64 levels',
    ],
  },
  {
    name: 'several schema errors at once',
    yaml: H + 'hostnme: x\nusers:\n  group: Guix\nfilesystem:\n  tmp: { mode: "888", size: 0 }\ndevices: [floppy]\nnetwork: wifi\noom_score_adj: 2000\n',
    errors: [
      'policy.yaml:3:1: unknown key \'hostnme\'',
      'policy.yaml:5:10: users.group: must be an account name (lower case letters, digits, \'_\' and \'-\'), got "Guix"',
      'policy.yaml:7:16: filesystem.tmp.mode: must be an octal mode such as "0555", got "888"',
      'policy.yaml:7:29: filesystem.tmp.size: expected a string, got integer',
      'policy.yaml:8:11: devices[0]: "floppy" is not one of: null, zero, full, random, urandom, tty, kvm, fuse, net/tun, pts, shm, fd',
      'policy.yaml:9:10: network: "wifi" is not one of: none, slirp, host',
      'policy.yaml:10:16: oom_score_adj: must be <= 1000, got 2000',
    ],
  },
  {
    name: 'several semantic errors at once',
    yaml: H + 'network: slirp\ndevices: [zero, zero]\ncapabilities: { bounding: [CAP_FOO], ambient: [CAP_KILL] }\nseccomp:\n  errno: EFOO\n  deny: [nosuch]\nlimits:\n  rlimits: { stack: { soft: 2, hard: 1 } }\nno_new_privs: false\n',
    errors: [
      'policy.yaml:3:10: network: slirp needs fixed_output: true (only fixed-output builds, checked by hash, may reach a network)',
      'policy.yaml:4:17: devices[1]: \'zero\' is already listed at devices[0]',
      'policy.yaml:5:28: capabilities.bounding[0]: unknown capability \'CAP_FOO\'',
      'policy.yaml:5:48: capabilities.ambient[0]: \'CAP_KILL\' must also be in capabilities.bounding',
      'policy.yaml:7:10: seccomp.errno: unknown errno \'EFOO\'',
      'policy.yaml:8:10: seccomp.deny[0]: unknown syscall \'nosuch\'',
      'policy.yaml:10:21: limits.rlimits.stack: soft limit 2 is above hard limit 1',
      'policy.yaml:11:15: no_new_privs: false is impossible with seccomp (an unprivileged builder can only load a filter under no_new_privs)',
    ],
  },
  {
    name: 'error in a base file, with the base file name',
    yaml: H + 'extends: ./base-bad.yaml\nhostname: "-x"\n',
    files: { 'base-bad.yaml': 'stockade: 1\nname: base-bad\nnetwork: { mode: slirp }\ndevices: [floppy]\n' },
    errors: [
      'base-bad.yaml:3:10: network: slirp needs fixed_output: true (only fixed-output builds, checked by hash, may reach a network)',
      'base-bad.yaml:4:11: devices[0]: "floppy" is not one of: null, zero, full, random, urandom, tty, kvm, fuse, net/tun, pts, shm, fd',
      'policy.yaml:4:11: hostname: must be a valid host name, got "-x"',
    ],
  },
  {
    name: 'an unknown key hides no semantic error',
    yaml: H + 'hostnme: localhost\nnetwork: slirp\ndevices: [zero, zero]\n',
    errors: [
      'policy.yaml:3:1: unknown key \'hostnme\'',
      'policy.yaml:4:10: network: slirp needs fixed_output: true (only fixed-output builds, checked by hash, may reach a network)',
      'policy.yaml:5:17: devices[1]: \'zero\' is already listed at devices[0]',
    ],
  },
  {
    name: 'schema errors beside semantic errors in other sections, nested unknown keys too',
    yaml: H + 'filesystem:\n  paths: [{ source: /proc }, { source: /x, bogus: 1 }]\nseccomp: { errno: 5, deny: [nosuch] }\nlimits: { rlimits: { nofile: lots, stack: { soft: 2, hard: 1 } } }\n',
    errors: [
      'policy.yaml:4:21: filesystem.paths[0]: /proc is set up by Stockade itself and cannot be bound over',
      'policy.yaml:4:44: filesystem.paths[1]: unknown key \'bogus\'',
      'policy.yaml:5:19: seccomp.errno: expected a string, got integer',
      'policy.yaml:5:29: seccomp.deny[0]: unknown syscall \'nosuch\'',
      'policy.yaml:6:30: limits.rlimits.nofile: expected an integer or a map or "unlimited", got string "lots"',
      'policy.yaml:6:43: limits.rlimits.stack: soft limit 2 is above hard limit 1',
    ],
  },
  {
    name: 'a rejected value hides the checks that read it, not a default in its place',
    // Without fixed_output's value the network check would judge the default (false).
    yaml: H + 'fixed_output: "yes"\nnetwork: slirp\ndevices: [zero, zero, floppy]\ncapabilities: { bounding: CAP_KILL, ambient: [CAP_KILL] }\n',
    errors: [
      'policy.yaml:3:15: fixed_output: expected true or false, got string',
      'policy.yaml:5:23: devices[2]: "floppy" is not one of: null, zero, full, random, urandom, tty, kvm, fuse, net/tun, pts, shm, fd',
      'policy.yaml:6:27: capabilities.bounding: expected a list, got string',
    ],
  },
  {
    name: 'semantic error across files: base sets slirp, child drops fixed_output',
    yaml: H + 'extends: base-fo\nfixed_output: false\n',
    files: { 'base-fo.yaml': 'stockade: 1\nname: base-fo\nfixed_output: true\nnetwork: slirp\n' },
    errors: [
      'policy.yaml:4:15: fixed_output: false, but network: slirp (set at base-fo.yaml:4:10) needs fixed_output: true (only fixed-output builds, checked by hash, may reach a network)',
    ],
  },
];

const root = mkdtempSync(join(tmpdir(), 'stockade-invalid-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.ok(CASES.length >= 45, `${CASES.length} invalid policies`);
t.equal(new Set(CASES.map((c) => c.name)).size, CASES.length, 'case names are unique');

CASES.forEach((c, index) => {
  t.test(c.name, async (t) => {
    const dir = join(root, String(index));
    mkdirSync(dir);
    for (const [name, text] of Object.entries(c.files ?? {})) writeFileSync(join(dir, name), text);
    writeFileSync(join(dir, 'policy.yaml'), c.yaml);
    let error: unknown;
    try {
      loadPolicy(join(dir, 'policy.yaml'));
    } catch (err) {
      error = err;
    }
    if (!(error instanceof PolicyError)) {
      t.fail(`expected a PolicyError, got ${error instanceof Error ? error.stack : 'a valid policy'}`);
      return;
    }
    // Messages naming other files (a base policy's node, a seccomp profile) name them relative too.
    t.strictSame(error.diagnostics.map((d) => formatDiagnostic({ ...d, file: relative(dir, d.file), message: d.message.replaceAll(`${dir}/`, '') })), c.errors);
    // The error's own text is the diagnostics, one a line, and nothing else (no stack, no prefix).
    t.equal(error.message, error.diagnostics.map(formatDiagnostic).join('\n'));
  });
});
