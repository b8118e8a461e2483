#!/usr/bin/env bash
# `make browser-test`: the wall page and the operator dashboard in headless Chromium
# (tests/browser/wall.test.mjs, dashboard.test.mjs) against
# the demo stack. Needs Debian's `chromium` (installed with apt-get when missing and run as root)
# and Node.js with npm; playwright-core comes pinned from tests/browser/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "browser-test: installing Debian's chromium…" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "browser-test: $CHROMIUM not found: install Debian's chromium (apt-get install chromium)" \
      "or set CHROMIUM=/path/to/chromium" >&2
    exit 1
  fi
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "browser-test: needs Node.js and npm (apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
# npm ci only when the lock file changed since the last install.
if [[ ! -f tests/browser/node_modules/.package-lock.json ||
      tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]]; then
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
export CHROMIUM
exec scripts/demo.sh --run node --test --test-concurrency=1 tests/browser/wall.test.mjs tests/browser/dashboard.test.mjs
