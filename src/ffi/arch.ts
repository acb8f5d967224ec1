// Architecture facts the FFI layer depends on, with Linux's tables re-exported for it. Stockade
// supports x86_64 only for now: syscall numbers, struct layouts and the seccomp ABI list are
// written for it, so any other architecture fails at load time instead of calling the wrong syscall.

const SUPPORTED_ARCHITECTURES = ['x64'] as const;

export function assertSupportedArch(): void {
  const { arch } = process; // the global: importing node:process costs ~10 ms of start-up
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new Error(
      `stockade: architecture ${arch} is not supported (supported: x86_64); ` +
        'syscall numbers and struct layouts are only defined for x86_64',
    );
  }
}

/** libseccomp's name of the architecture Stockade runs on: what a policy's `native` means here. */
export function nativeSeccompArch(): string {
  assertSupportedArch();
  return 'x86_64';
}

export * from '../linux/constants.js';
