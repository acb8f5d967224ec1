// Keyrings are not namespaced: a builder would inherit its supervisor's session keyring (systemd
// gives a daemon one, and every build of that daemon would share it), and the pool user's user
// and user-session keyrings outlive its builds. After the identity drop, so the keyrings are the
// build user's: a fresh anonymous session keyring, and the pool user's own keyrings emptied.
import { KEY_SPEC } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { clearKeyring, joinNewSessionKeyring } from '../ffi/libc.js';

export function isolateKeyrings(): void {
  try {
    joinNewSessionKeyring();
  } catch (err) {
    // A kernel without keyrings (CONFIG_KEYS off) has none to leak.
    if (err instanceof SyscallError && err.code === 'ENOSYS') return;
    throw err;
  }
  clearKeyring(KEY_SPEC.USER);
  clearKeyring(KEY_SPEC.USER_SESSION);
}
