#!/bin/sh
# Compiles examples/hello/hello.c through `stockade runner` as a Buildbarn worker would: starts
# the runner (policy remote-exec) on a socket, has client.mjs lay out and send one action, runs
# the program it made, and stops the runner. Needs root, gcc, and a built checkout.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
stockade() { node "$top/dist/cli/main.js" "$@"; }

command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null; }
[ -f "$top/dist/cli/main.js" ] || (cd "$top" && npm ci --no-audit --no-fund && npm run build)
stockade pool create --group guixbuild --count 10

work=$(mktemp -d /var/tmp/stockade-runner-example.XXXXXX)
mkdir "$work/build"
# Started as node itself, not through the function: $! must be the runner, for the trap to stop it.
node "$top/dist/cli/main.js" runner --socket "$work/runner.sock" --build-directory "$work/build" --policy remote-exec &
runner=$!
trap 'kill -TERM $runner 2>/dev/null; wait $runner 2>/dev/null; rm -rf "$work"' EXIT
while [ ! -S "$work/runner.sock" ]; do
  kill -0 $runner 2>/dev/null || { echo "stockade runner did not start" >&2; exit 1; }
  sleep 0.1
done
node "$here/client.mjs" "$work/runner.sock" "$work/build"
