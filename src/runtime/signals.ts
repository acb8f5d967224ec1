// What init hands the builder besides the Plan: Node ignores SIGPIPE and SIGXFSZ and execve keeps
// ignored signals ignored, so builders would start with a writer to a closed pipe surviving
// (`yes | head` never ends by SIGPIPE). guix-daemon's builders start with every disposition at
// its default and an empty mask. And the parent-death signal, so the build ends with its supervisor.
import { writeSync } from 'node:fs';
import { SIGNALS } from '../ffi/arch.js';
import { setDefaultSignalAction, setParentDeathSignal, setSignalMask } from '../ffi/libc.js';

/** Every disposition back to SIG_DFL and the calling thread's mask emptied; execve keeps both. */
export function resetSignals(): void {
  for (let signal = 1; signal <= SIGNALS.LAST; signal++) {
    if (signal !== SIGNALS.SIGKILL && signal !== SIGNALS.SIGSTOP) setDefaultSignalAction(signal);
  }
  setSignalMask(0n);
}

/**
 * SIGKILL to init (so to its whole PID namespace) when the supervisor dies. The kernel clears
 * the setting on any change of credentials, so this comes after the identity drop. A supervisor
 * that died before it was set is caught by a write on the status fd, whose only reader it was.
 */
export function armParentDeath(statusFd: number): void {
  setParentDeathSignal(SIGNALS.SIGKILL);
  writeSync(statusFd, '{}\n');
}
