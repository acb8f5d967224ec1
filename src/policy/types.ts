// The policy as written (after `extends` is resolved), matching schemas/policy.schema.json.

export type SeccompActionName = 'allow' | 'errno' | 'kill_process' | 'kill_thread' | 'trap' | 'log';
export type DeviceName = 'null' | 'zero' | 'full' | 'random' | 'urandom' | 'tty' | 'kvm' | 'fuse' | 'net/tun' | 'pts' | 'shm' | 'fd';
export type NetworkMode = 'none' | 'slirp' | 'host';
export type RlimitValue = number | 'unlimited';

export interface Policy {
  stockade: 1;
  name: string;
  description?: string;
  extends?: string;
  fixed_output?: boolean;
  users?: {
    group?: string;
    range?: { first: number; count: number; gid: number };
    state_dir?: string;
    passwd?: { name?: string; gecos?: string; home?: string; shell?: string };
    group_name?: string;
    supplementary_groups?: 'pool' | 'none';
  };
  filesystem?: {
    root?: { size?: string; mode?: string; readonly?: boolean };
    paths?: { source: string; target?: string; readonly?: boolean; optional?: boolean }[];
    inputs?: { under?: string[]; readonly?: true };
    outputs?: { under?: string[] };
    tmp?: { size?: string; mode?: string };
    build_dir?: string;
    build_dir_host?: string;
    etc?: {
      passwd?: 'generated' | 'none';
      group?: 'generated' | 'none';
      hosts?: 'localhost' | 'slirp' | 'none';
      resolv_conf?: 'slirp' | 'none';
      host?: string[];
      files?: Record<string, string>;
    };
  };
  devices?: (DeviceName | { name: DeviceName; optional?: boolean })[];
  proc?: { mount?: boolean };
  network?: NetworkMode | { mode: NetworkMode; allow_host_loopback?: boolean; vsock?: boolean };
  hostname?: string;
  domainname?: string;
  environment?: {
    clear?: true;
    set?: Record<string, string>;
    pass?: string[];
    spec_allow?: string[];
    build_dir_vars?: string[];
  };
  capabilities?: { bounding?: string[]; ambient?: string[] };
  no_new_privs?: boolean;
  seccomp?: {
    default?: SeccompActionName;
    errno?: string;
    architectures?: ('native' | 'x86_64' | 'x86' | 'x32')[];
    deny?: string[];
    rules?: {
      syscall: string | string[];
      action: SeccompActionName;
      errno?: string;
      args?: { index: number; op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'masked_eq'; value: number; mask?: number }[];
      optional?: boolean;
    }[];
    profile?: string;
  };
  landlock?: {
    compat?: 'require' | 'best-effort';
    read?: string[];
    write?: string[];
    execute?: string[];
    tcp?: { bind?: number[]; connect?: number[] };
    scope?: ('abstract-unix-socket' | 'signal')[];
  };
  limits?: {
    rlimits?: Record<string, RlimitValue | { soft: RlimitValue; hard: RlimitValue }>;
    cgroup?: { pids?: number; memory?: number | string; cpu?: number };
    inputs?: number;
    output_bytes?: number | string;
    build_dir_bytes?: number | string;
  };
  timeouts?: { total?: number; max_silent?: number };
  outputs?: { owner?: { uid: number; gid: number } };
  personality?: string[];
  oom_score_adj?: number;
}

export interface BuildSpec {
  name: string;
  builder: string;
  args?: string[];
  env?: Record<string, string>;
  inputs?: string[];
  outputs?: string[];
  cores?: number;
}
