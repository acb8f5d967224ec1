// A RunRequest checked and resolved: every path of it opened once beneath the runner's build
// directory (no `..`, no symlinks, src/ffi/resolve.ts), every size bounded. What fails here is
// the request's fault and is answered INVALID_ARGUMENT.
import { ERRNO, OPEN_FLAGS } from '../ffi/arch.js';
import { SyscallError } from '../ffi/errors.js';
import { close } from '../ffi/libc.js';
import { isMissing, openBeneath, PathRefused } from '../ffi/resolve.js';

/** RunRequest as proto-loader decodes it (keepCase). */
export interface RunRequest {
  arguments: string[];
  environment_variables: Record<string, string>;
  working_directory: string;
  stdout_path: string;
  stderr_path: string;
  input_root_directory: string;
  temporary_directory: string;
  server_logs_directory: string;
}

export const REQUEST_BOUNDS = { arguments: 65536, argumentBytes: 1 << 20, variables: 65536, environmentBytes: 1 << 20, pathBytes: 4096, pathDepth: 256 } as const;

/** A request that cannot be run as it is (gRPC INVALID_ARGUMENT). */
export class RequestInvalid extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestInvalid';
  }
}

/** Components of a request's relative path: `.` and empty components dropped, `..` and absolute paths refused. */
export function relativeParts(field: string, path: string): string[] {
  if (path.length > REQUEST_BOUNDS.pathBytes) throw new RequestInvalid(`${field}: longer than ${REQUEST_BOUNDS.pathBytes} bytes`);
  if (path.includes('\0')) throw new RequestInvalid(`${field}: contains a NUL byte`);
  if (path.startsWith('/')) throw new RequestInvalid(`${field} ${JSON.stringify(path)}: must be relative`);
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new RequestInvalid(`${field} ${JSON.stringify(path)}: escapes its directory ('..')`);
  if (parts.length > REQUEST_BOUNDS.pathDepth) throw new RequestInvalid(`${field}: deeper than ${REQUEST_BOUNDS.pathDepth} components`);
  return parts;
}

/** Opens `path` (relative to `rootFd`) beneath it; a symlink or escape is the request's fault. */
export function openRequestPath(rootFd: number, field: string, path: string, flags: number, mode?: number): number {
  const relative = relativeParts(field, path).join('/');
  try {
    return openBeneath(rootFd, relative, flags, { mode, label: `${field} ${JSON.stringify(path)}` });
  } catch (err) {
    if (err instanceof PathRefused) throw new RequestInvalid(err.message);
    if (isMissing(err)) throw new RequestInvalid(`${field} ${JSON.stringify(path)}: does not exist`);
    if (err instanceof SyscallError && err.errno === ERRNO.ENOTDIR) throw new RequestInvalid(`${field} ${JSON.stringify(path)}: not a directory`);
    throw err;
  }
}

export const DIRECTORY = OPEN_FLAGS.O_DIRECTORY;

/** Checks the sizes and bytes of arguments and environment. */
export function checkRequest(request: RunRequest): void {
  const args = request.arguments ?? [];
  if (args.length === 0) throw new RequestInvalid('arguments: empty (argv[0] is needed)');
  if (args[0] === '') throw new RequestInvalid('arguments[0]: empty');
  if (args.length > REQUEST_BOUNDS.arguments) throw new RequestInvalid(`arguments: more than ${REQUEST_BOUNDS.arguments}`);
  let bytes = 0;
  for (const [i, arg] of args.entries()) {
    if (arg.includes('\0')) throw new RequestInvalid(`arguments[${i}]: contains a NUL byte`);
    bytes += Buffer.byteLength(arg) + 1;
  }
  if (bytes > REQUEST_BOUNDS.argumentBytes) throw new RequestInvalid(`arguments: more than ${REQUEST_BOUNDS.argumentBytes} bytes`);
  const env = Object.entries(request.environment_variables ?? {});
  if (env.length > REQUEST_BOUNDS.variables) throw new RequestInvalid(`environment_variables: more than ${REQUEST_BOUNDS.variables}`);
  bytes = 0;
  for (const [name, value] of env) {
    if (name === '' || name.includes('=') || name.includes('\0')) throw new RequestInvalid(`environment_variables: invalid name ${JSON.stringify(name)}`);
    if (value.includes('\0')) throw new RequestInvalid(`environment_variables.${name}: contains a NUL byte`);
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 2;
  }
  if (bytes > REQUEST_BOUNDS.environmentBytes) throw new RequestInvalid(`environment_variables: more than ${REQUEST_BOUNDS.environmentBytes} bytes`);
}

/** Closes the fds a request opened (undefined: not opened). */
export function closeAll(fds: (number | undefined)[]): void {
  for (const fd of fds) if (fd !== undefined) close(fd);
}
