// libseccomp bindings (libseccomp.so.2, loaded once, lazily). The filter API attribute
// SCMP_FLTATR_API_SYSRAWRC is set on every context, so failures return -errno and are
// reported with the errno's own name instead of libseccomp's generic -ECANCELED.
import { readSync } from 'node:fs';
import type { LibraryHandle } from 'koffi';
import { assertSupportedArch } from './arch.js';
import { quote } from './errors.js';
import { check, fail, koffi, libc } from './lib.js';
import { close } from './libc.js';

/** Action values from seccomp.h. */
export const SCMP_ACT = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** Comparison operators of struct scmp_arg_cmp. */
export const SCMP_CMP = { ne: 1, lt: 2, le: 3, eq: 4, ge: 5, gt: 6, masked_eq: 7 } as const;

/** Filter attributes (enum scmp_filter_attr, libseccomp 2.5). */
export const SCMP_FLTATR = {
  ACT_DEFAULT: 1,
  ACT_BADARCH: 2,
  CTL_NNP: 3,
  CTL_TSYNC: 4,
  CTL_LOG: 6,
  CTL_OPTIMIZE: 8,
  API_SYSRAWRC: 9,
} as const;

/** Returned by the name resolvers for a name libseccomp does not know at all. */
export const NR_SCMP_ERROR = -1;

/** struct scmp_arg_cmp: one argument condition of a rule. */
export interface ScmpArgCmp {
  arg: number;
  op: number;
  datum_a: bigint;
  datum_b: bigint;
}

export type FilterHandle = unknown;

interface Api {
  init(defaultAction: number): FilterHandle | null;
  release(ctx: FilterHandle): void;
  archNative(): number;
  archResolveName(name: string): number;
  archAdd(ctx: FilterHandle, arch: number): number;
  archRemove(ctx: FilterHandle, arch: number): number;
  resolveName(name: string): number;
  resolveNameArch(arch: number, name: string): number;
  ruleAddArray(ctx: FilterHandle, action: number, syscall: number, count: number, args: ScmpArgCmp[] | null): number;
  attrSet(ctx: FilterHandle, attr: number, value: number): number;
  load(ctx: FilterHandle): number;
  exportPfc(ctx: FilterHandle, fd: number): number;
  exportBpf(ctx: FilterHandle, fd: number): number;
  version(): { major: number; minor: number; micro: number };
}

let api: Api | undefined;

export function libseccomp(): Api {
  if (api) return api;
  assertSupportedArch();
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libseccomp.so.2');
  } catch (err) {
    throw new Error(`cannot load libseccomp.so.2 (Debian: apt-get install libseccomp2): ${(err as Error).message}`);
  }
  const versionStruct = koffi.struct('stockade_scmp_version', { major: 'uint', minor: 'uint', micro: 'uint' });
  const version = lib.func('seccomp_version', koffi.pointer(versionStruct), []);
  koffi.struct('stockade_scmp_arg_cmp', { arg: 'unsigned int', op: 'int', datum_a: 'uint64_t', datum_b: 'uint64_t' });
  api = {
    init: lib.func('void *seccomp_init(uint32_t def_action)'),
    release: lib.func('void seccomp_release(void *ctx)'),
    archNative: lib.func('uint32_t seccomp_arch_native(void)'),
    archResolveName: lib.func('uint32_t seccomp_arch_resolve_name(const char *name)'),
    archAdd: lib.func('int seccomp_arch_add(void *ctx, uint32_t arch_token)'),
    archRemove: lib.func('int seccomp_arch_remove(void *ctx, uint32_t arch_token)'),
    resolveName: lib.func('int seccomp_syscall_resolve_name(const char *name)'),
    resolveNameArch: lib.func('int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name)'),
    ruleAddArray: lib.func(
      'int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const stockade_scmp_arg_cmp *arg_array)',
    ),
    attrSet: lib.func('int seccomp_attr_set(void *ctx, int attr, uint32_t value)'),
    load: lib.func('int seccomp_load(void *ctx)'),
    exportPfc: lib.func('int seccomp_export_pfc(void *ctx, int fd)'),
    exportBpf: lib.func('int seccomp_export_bpf(void *ctx, int fd)'),
    version: () => koffi.decode(version(), versionStruct) as { major: number; minor: number; micro: number },
  };
  return api;
}

/** Throws a SyscallError for a libseccomp call that returned -errno. */
export function checkRc(rc: number, call: string, describe: () => string): number {
  if (rc < 0) fail(call, describe(), -rc);
  return rc;
}

/** The architecture token of a libseccomp architecture name (`native` = this machine's). */
export function archToken(name: string): number {
  const lib = libseccomp();
  const token = name === 'native' ? lib.archNative() : lib.archResolveName(name);
  if (token === 0) throw new Error(`seccomp: unknown architecture ${quote(name)}`);
  return token;
}

const MFD_CLOEXEC = 1;

/**
 * Runs a libseccomp export into a memfd and returns what it wrote, so exports need no
 * temporary file.
 */
export function exportToBuffer(ctx: FilterHandle, format: 'pfc' | 'bpf'): Buffer {
  const fd = check(libc().memfd_create('stockade-seccomp', MFD_CLOEXEC), 'memfd_create', () => '"stockade-seccomp", MFD_CLOEXEC');
  try {
    const lib = libseccomp();
    const rc = format === 'pfc' ? lib.exportPfc(ctx, fd) : lib.exportBpf(ctx, fd);
    checkRc(rc, `seccomp_export_${format}`, () => `ctx, ${fd}`);
    const chunks: Buffer[] = [];
    for (let offset = 0; ; ) {
      const chunk = Buffer.alloc(65536);
      const n = readSync(fd, chunk, 0, chunk.length, offset);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      offset += n;
    }
    return Buffer.concat(chunks);
  } finally {
    close(fd);
  }
}
