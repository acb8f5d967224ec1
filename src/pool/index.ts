// The build-user pool: resolve (NSS or a numeric range), lock (flock per UID), reap (kill leftovers).
export { acquire, type AcquireOptions, type Lease } from './acquire.js';
export { checkPool, status, type Finding, type PoolStatus, type UidStatus } from './inspect.js';
export { createPool, type CreateOptions, type CreateResult } from './create.js';
export { DEFAULT_STATE_DIR, type Holder } from './lock.js';
export { processEnded, processesOf, reapUid } from './reap.js';
export { resolvePool, resolveSafePool, type Pool, type PoolMember } from './resolve.js';
export { PoolError, PRIVILEGED_GROUPS, NO_LOGIN_SHELLS } from './rules.js';
