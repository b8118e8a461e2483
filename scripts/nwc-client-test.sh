#!/usr/bin/env bash
# FakeNwc driven by @getalby/sdk's NWCClient (tests/nwc-client/): an independent NIP-47 client
# checks the double the `nwc` backend is tested against. Installs the pinned npm packages
# (tests/nwc-client/package-lock.json) into target/nwc-client once, again when the lock file
# changes; builds fake-nwc; runs the node test. Needs Node.js and npm (apt-get install nodejs npm).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CARGO=${CARGO:-cargo}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "nwc-client-test: needs Node.js and npm (apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
dir=target/nwc-client
stamp="$dir/.lock-$(sha256sum tests/nwc-client/package-lock.json | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  cp tests/nwc-client/package.json tests/nwc-client/package-lock.json "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --silent --engine-strict=false)
  touch "$stamp"
fi
cp tests/nwc-client/getalby.test.mjs "$dir/"
$CARGO build --locked -q -p fake-nwc --bin fake-nwc
FAKE_NWC_BIN="$root/target/debug/fake-nwc" node --test "$dir/getalby.test.mjs"
