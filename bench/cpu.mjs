// Shared by the bench scripts: CPU time of waited-for children, read through koffi
// (process.cpuUsage covers only this process). getrusage is no call Stockade makes, so it is
// declared here rather than in Stockade's FFI.
import { createRequire } from 'node:module';

const koffi = createRequire(import.meta.url)('koffi');
const getrusage = koffi.load('libc.so.6').func('int getrusage(int who, void *usage)');
const RUSAGE_CHILDREN = -1;

/** CPU seconds (user + system) used so far by waited-for children. */
export function childrenCpu() {
  const usage = Buffer.alloc(144); // struct rusage; ru_utime and ru_stime are its first two timevals
  if (getrusage(RUSAGE_CHILDREN, usage) !== 0) throw new Error('getrusage failed');
  const tv = (offset) => Number(usage.readBigInt64LE(offset)) + Number(usage.readBigInt64LE(offset + 8)) / 1e6;
  return tv(0) + tv(16);
}
