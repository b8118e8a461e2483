#!/usr/bin/env bash
# `make soak`: issue #14's soak against the demo stack (sidecar with the dev node and SQLite,
# the demo site, the filter in the development gateway): 60 s of unpaid challenges from 100,000
# rotating IPv6 addresses plus 10,000 concurrent long-polls, while an honest visitor pays,
# browses and leaves; prints sidecar RSS and the filter's shared-data size at start and end
# (scripts/soak.py). Needs root for the address range: 2001:db8::/32 (documentation prefix) is
# routed to the loopback interface for the run and removed afterwards. Binds the demo's ports:
# run it alone (make soak takes /tmp/lw-demo.lock).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == --inner ]]; then
  export SOAK_STATS_FILE=$PWD/target/demo/logs/gateway-stats.json
  # The gateway writes the file once a second from its start.
  for _ in $(seq 50); do [[ -s $SOAK_STATS_FILE ]] && break; sleep 0.1; done
  exec python3 scripts/soak.py
fi

[[ $(id -u) == 0 ]] || { echo "soak: needs root (ip -6 route add local 2001:db8::/32 dev lo)" >&2; exit 2; }
# 10,000 long-polls hold a socket each in the client and the sidecar: raise the soft limit of
# open files to the hard one (20,000 on the machine of bench/RESULTS.md).
ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) >= 12000 )) || { echo "soak: needs 12,000 open files (ulimit -Hn is $(ulimit -Hn))" >&2; exit 2; }
ip -6 route add local 2001:db8::/32 dev lo
trap 'ip -6 route del local 2001:db8::/32 dev lo' EXIT
DEMO_RELEASE=${SOAK_RELEASE:-1} DEMO_PROXY=gateway DEMO_LISTEN='[::]:8080' scripts/demo.sh --run "$0" --inner
