#!/usr/bin/env bash
# Validate every Envoy, Kubernetes and Dockerfile of the repository without Envoy, Kubernetes or
# Docker (none runs here), then check that deliberately broken copies are rejected.
#
#   scripts/validate-configs.sh            # `make validate-configs` (part of `make test`)
#
# Installs the pinned validators (scripts/validate-requirements.txt) into target/validate-venv
# once; reinstalls when that file changes. Needs python3 >= 3.11 and the registries (PyPI),
# kubectl with kustomize v5 (renders deploy/kubernetes) and systemd-analyze (deploy/systemd).
# LW_BIN: a built `lightning-wall` binary for check-config (default: built here with cargo).
# What is and is not covered: scripts/validate_configs.py and docs/deployment.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

venv=target/validate-venv
requirements=scripts/validate-requirements.txt
stamp="$venv/.requirements-$(sha256sum "$requirements" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "validate-configs: installing pinned validators into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  PIP_ROOT_USER_ACTION=ignore "$venv/bin/pip" install --quiet --disable-pip-version-check \
    --no-deps -r "$requirements"
  touch "$stamp"
fi

if [ -z "${LW_BIN:-}" ]; then
  cargo build --locked --quiet -p lightning-wall --bin lightning-wall
  LW_BIN="$root/target/debug/lightning-wall"
fi
LW_BIN="$LW_BIN" exec "$venv/bin/python" scripts/validate_configs.py
