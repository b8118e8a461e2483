#!/usr/bin/env bash
# `make clients-test`: the client helpers (client/ in Rust, clients/js, clients/python) end to end
# against the demo stack: deposit -> held -> used -> left -> refunded (CANCELED on the node),
# deposit -> trap path -> forfeited (SETTLED), and the pay route with and without the preimage.
# Installs what a fresh Debian machine lacks (Node.js, Python's requests), builds the Rust test
# first, then runs everything under one demo (scripts/demo.sh --run, which binds 8080-8083).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${LW_DEMO_URL:-} ]]; then
  if ! command -v node >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
    else
      echo "clients-test: needs Node.js (apt-get install nodejs)" >&2
      exit 1
    fi
  fi
  python3 -c 'import requests' 2>/dev/null ||
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check 'requests>=2.31,<3'
  cargo test --locked --workspace --test client_demo --no-run
  exec scripts/demo.sh --run "$0"
fi

# Inside the demo (LW_DEMO_URL set by scripts/demo.sh). Each helper runs even if one before failed.
failed=()
echo "clients-test: Rust (client/)" >&2
cargo test --locked --workspace --test client_demo -- --ignored || failed+=(rust)
echo "clients-test: JavaScript (clients/js)" >&2
(cd clients/js && node --test) || failed+=(js)
echo "clients-test: Python (clients/python, urllib and requests)" >&2
(cd clients/python && LW_CLIENTS_REQUIRE_REQUESTS=1 python3 -m unittest discover -s tests -t . -v) ||
  failed+=(python)
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "clients-test: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "clients-test: passed" >&2
