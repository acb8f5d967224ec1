#!/usr/bin/env node
// A fake bb_worker: lays one action out in the runner's build directory as bb_worker would
// (the input root holding examples/hello/hello.c read-only, a temporary directory, a server
// logs directory), asks `stockade runner` on SOCKET to compile it with the host's gcc, and
// runs what came out.
// usage: node client.mjs SOCKET BUILD_DIRECTORY
import { execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const [socket, buildDirectory] = process.argv.slice(2);
if (!socket || !buildDirectory) {
  console.error('usage: node client.mjs SOCKET BUILD_DIRECTORY');
  process.exit(2);
}
const top = fileURLToPath(new URL('../../', import.meta.url));
const protoDir = join(top, 'proto');

// The action's directory, as bb_worker makes one per action.
const action = mkdtempSync(join(buildDirectory, 'hello-'));
const id = basename(action);
for (const dir of ['root', 'root/out', 'tmp', 'logs']) mkdirSync(join(action, dir), { recursive: true, mode: 0o755 });
copyFileSync(join(top, 'examples/hello/hello.c'), join(action, 'root/hello.c'));
chmodSync(join(action, 'root/hello.c'), 0o444);

const definition = protoLoader.loadSync('buildbarn/runner/runner.proto', { includeDirs: [protoDir], keepCase: true, longs: Number, defaults: true });
const { Runner } = grpc.loadPackageDefinition(definition).buildbarn.runner;
const client = new Runner(`unix://${socket}`, grpc.credentials.createInsecure());

const readiness = await new Promise((resolve) => client.CheckReadiness({ path: id }, (err) => resolve(err)));
if (readiness) throw new Error(`CheckReadiness: ${readiness.details}`);

const request = {
  // The uid the action ran as goes into the program, as examples/hello's Makefile does.
  arguments: ['sh', '-c', 'gcc -O2 -Wall -DBUILT_BY="\\"$(id -u)\\"" -o out/hello hello.c'],
  environment_variables: { PATH: '/usr/bin:/bin' },
  working_directory: '',
  input_root_directory: `${id}/root`,
  temporary_directory: `${id}/tmp`,
  server_logs_directory: `${id}/logs`,
  stdout_path: `${id}/stdout`,
  stderr_path: `${id}/stderr`,
};
const response = await new Promise((resolve, reject) => client.Run(request, (err, res) => (err ? reject(err) : resolve(res))));
client.close();

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(protoDir, target));
root.loadSync('buildbarn/resourceusage/resourceusage.proto', { keepCase: true });
const Usage = root.lookupType('buildbarn.resourceusage.POSIXResourceUsage');
const usage = Usage.toObject(Usage.decode(response.resource_usage[0].value), { longs: Number });
const seconds = (d) => (d ? (d.seconds + d.nanos / 1e9).toFixed(3) : '?');

console.log(`exit_code ${response.exit_code}; user ${seconds(usage.user_time)} s, system ${seconds(usage.system_time)} s, peak memory ${usage.maximum_resident_set_size ?? '?'} bytes`);
const stderr = readFileSync(join(action, 'stderr'), 'utf8');
if (stderr) process.stdout.write(`gcc said:\n${stderr}`);
if (response.exit_code !== 0) process.exit(1);
// What bb_worker would upload as the action's output, run here.
process.stdout.write(execFileSync(join(action, 'root/out/hello'), { encoding: 'utf8' }));
