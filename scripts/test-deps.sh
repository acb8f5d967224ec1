#!/bin/sh
# The Debian packages the tests need, listed here and nowhere else; `npm test` runs this first.
# As root, missing ones are installed. Otherwise nothing is done here: at the end of the run,
# scripts/test.mjs names them (`--missing` prints them), beside the skipped tests' reasons.
set -eu
packages="libseccomp2 slirp4netns bubblewrap passwd login procps iproute2 util-linux gcc make libc6-dev acl golang-github-containers-common"

missing=""
for p in $packages; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing="$missing $p"
done
if [ "${1:-}" = --missing ]; then
  echo "${missing# }"
  exit 0
fi
if [ -z "$missing" ] || [ "$(id -u)" -ne 0 ]; then
  exit 0
fi
echo "test-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
