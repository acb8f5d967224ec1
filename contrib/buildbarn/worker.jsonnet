// bb_worker configuration with Stockade as its runner: one `stockade runner` per policy, each
// on its own socket, all sharing the worker's build directory. The scheduler sends an action to
// the runners entry whose platform properties match the action's, so an action asks for a
// sandbox with the platform property stockade-policy=NAME (Bazel: exec_properties =
// {"stockade-policy": "remote-exec"}). The runner never sees the property: its socket is the
// policy. Start the runners with stockade-runner@.service (stockade-runner@remote-exec, …).
local buildDirectory = '/worker/build';

local runner(policy, concurrency) = {
  endpoint: { address: 'unix:///run/stockade/runner-' + policy + '.sock' },
  // At most the size of the policy's build-user pool: more actions wait for a free user.
  concurrency: concurrency,
  instanceNamePrefix: '',
  platform: {
    properties: [
      { name: 'OSFamily', value: 'Linux' },
      { name: 'stockade-policy', value: policy },
    ],
  },
  workerId: { policy: policy },
};

{
  blobstore: {
    contentAddressableStorage: { grpc: { address: 'storage:8981' } },
    actionCache: { grpc: { address: 'storage:8981' } },
  },
  maximumMessageSizeBytes: 16 * 1024 * 1024,
  scheduler: { address: 'scheduler:8983' },
  global: {},
  buildDirectories: [{
    native: {
      buildDirectoryPath: buildDirectory,
      cacheDirectoryPath: '/worker/cache',
      maximumCacheFileCount: 10000,
      maximumCacheSizeBytes: 1024 * 1024 * 1024,
      cacheReplacementPolicy: 'LEAST_RECENTLY_USED',
    },
    runners: [
      // The default sandbox: strict, no network, host toolchain read-only.
      runner('remote-exec', 8),
      // A site policy of its own, served by a second runner.
      runner('remote-exec-large', 2),
    ],
  }],
  outputUploadConcurrency: 11,
}
