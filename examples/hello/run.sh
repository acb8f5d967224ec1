#!/bin/sh
# Builds examples/hello inside Stockade's sandbox under the shipped guix-default policy, as
# guix would: the sources are put in the store, the host's compiler is an input, the build
# runs as a build user from the guixbuild pool (created if absent), and the result is run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
stockade() { node "$top/dist/cli/main.js" "$@"; }

if ! command -v gcc >/dev/null || ! command -v make >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc make libc6-dev >/dev/null
fi
[ -f "$top/dist/cli/main.js" ] || (cd "$top" && npm ci --no-audit --no-fund && npm run build)
stockade pool create --group guixbuild --count 10

# A content-addressed store path for the sources, as guix would give them.
hash=$(cat "$here/hello.c" "$here/Makefile" | sha256sum | cut -c1-32)
src=/gnu/store/$hash-hello-src
if [ ! -d "$src" ]; then
  mkdir -p /gnu/store "$src.tmp"
  cp "$here/hello.c" "$here/Makefile" "$src.tmp/"
  chmod -R a-w "$src.tmp"
  mv "$src.tmp" "$src"
fi
out=/var/lib/stockade/outputs/hello
rm -rf "$out"

stockade run --policy "$top/policies/guix-default.yaml" --name hello \
  --input /usr --input /bin --input /lib --input /lib64 --input "$src" --output "$out" \
  --env PATH=/usr/bin:/bin -- /usr/bin/make -f "$src/Makefile" SRC="$src" out="$out"
"$out/bin/hello"
