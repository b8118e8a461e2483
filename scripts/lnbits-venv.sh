#!/usr/bin/env bash
# Install the pinned LNbits (scripts/lnbits-requirements.txt) into target/lnbits-venv, once;
# reinstall when that file changes. `make test-deps` runs it, and fake-lnd/tests/lnbits.rs runs it
# when the venv is missing, so `cargo test` alone works on a fresh machine (needs python3 >= 3.10
# and PyPI). Prints the venv's path. A fresh install takes about 80 s; later runs return at once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

venv=target/lnbits-venv
requirements=scripts/lnbits-requirements.txt
stamp="$venv/.requirements-$(sha256sum "$requirements" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "lnbits-venv: installing the pinned LNbits into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  PIP_ROOT_USER_ACTION=ignore "$venv/bin/pip" install --quiet --disable-pip-version-check \
    --no-deps -r "$requirements" >&2
  touch "$stamp"
fi
echo "$root/$venv"
