// What a policy gets for a setting it leaves out: guix-daemon's value where it has one,
// and the safe choice otherwise (nothing shared, nothing kept).
import { DEFAULT_POOL_STATE_DIR, GUIX_DEVICES } from '../policy/lists.js';

export const DEFAULTS = {
  users: {
    group: 'guixbuild',
    stateDir: DEFAULT_POOL_STATE_DIR,
    passwd: { name: 'nixbld', gecos: 'Nix build user', home: '/', shell: '/noshell' },
    groupName: 'nixbld',
    supplementaryGroups: 'pool' as const,
  },
  root: { size: '64M', mode: '0555', readonly: true },
  tmp: { size: '50%', mode: '1777' },
  buildDir: '/tmp/guix-build-{name}.drv-0',
  buildDirHost: '/tmp',
  devices: GUIX_DEVICES,
  hostname: 'localhost',
  domainname: '(none)',
  buildDirVars: ['NIX_BUILD_TOP', 'TMPDIR', 'TEMPDIR', 'TMP', 'TEMP', 'PWD'],
  timeouts: { total: 86400, maxSilent: 3600 },
  /** guix's canonical output metadata (nix/libstore/local-store.cc canonicaliseTimestampAndPermissions). */
  outputs: { owner: { uid: 0, gid: 0 }, fileMode: 0o444, executableMode: 0o555, directoryMode: 0o555, mtime: 1 },
  oomScoreAdj: 1000,
  /** Inputs a spec may list: guix's largest closures have a few thousand store items. */
  maxInputs: 4096,
  seccompErrno: 'EPERM',
  /** The spec used by `explain` when none is given. */
  exampleSpec: { name: 'example', builder: '/bin/sh', args: [], env: {}, inputs: [], outputs: [], cores: 0 },
} as const;
