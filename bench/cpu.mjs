// Shared by the bench scripts: CPU time of waited-for children, read through Stockade's own FFI
// (process.cpuUsage covers only this process).
const { libcFn } = await import(new URL('../dist/ffi/libc.js', import.meta.url).href);
const getrusage = libcFn('int getrusage(int who, void *usage)');
const RUSAGE_CHILDREN = -1;

/** CPU seconds (user + system) used so far by waited-for children. */
export function childrenCpu() {
  const usage = Buffer.alloc(144); // struct rusage; ru_utime and ru_stime are its first two timevals
  if (getrusage(RUSAGE_CHILDREN, usage) !== 0) throw new Error('getrusage failed');
  const tv = (offset) => Number(usage.readBigInt64LE(offset)) + Number(usage.readBigInt64LE(offset + 8)) / 1e6;
  return tv(0) + tv(16);
}
