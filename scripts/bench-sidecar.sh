#!/usr/bin/env bash
# The sidecar's performance targets (issue 8): challenge minting with the dev node + SQLite
# (pay and deposit routes, >= 2,000/s), 10,000 deposits held at once with RSS <= 100 MB, and
# 1,000 concurrent long-poll waiters answered. Builds the release binary and the load generator
# (sidecar/examples/sidecar_bench.rs), starts `lightning-wall serve` on a temp config (dev node,
# SQLite in a temp data dir), runs the load, prints a results table and the machine load.
#
#   scripts/bench-sidecar.sh   # BENCH_SECONDS (3) x BENCH_ROUNDS (3) per minting mode,
#                              # BENCH_CONNECTIONS (32), BENCH_HELD (10000), BENCH_WAITERS (1000),
#                              # BENCH_NO_BUILD (skip the release build),
#                              # BENCH_WAITER_PAY_PER_S (0: pay the waiters in one burst),
#                              # BENCH_STORE (sqlite, or postgres: a fresh database per phase on
#                              # BENCH_PG (postgres://postgres@127.0.0.1:5432), dropped after)
#
# The machine may be shared with other builds: the load average is printed with the figures,
# and minting rates are medians of alternating pay/deposit rounds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${BENCH_SECONDS:-3}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNECTIONS:-32}
held=${BENCH_HELD:-10000}
store=${BENCH_STORE:-sqlite}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
waiters=${BENCH_WAITERS:-1000}
waiter_pay=${BENCH_WAITER_PAY_PER_S:-0}
base=${BENCH_PORT:-18400}

# BENCH_NO_BUILD=1: use the binaries already in target/release (e.g. while a test build runs).
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked -q -p lightning-wall --bin lightning-wall --example sidecar_bench
fi
# Honours CARGO_TARGET_DIR like the build above.
bin=${CARGO_TARGET_DIR:-target}/release/lightning-wall
load=${CARGO_TARGET_DIR:-target}/release/examples/sidecar_bench

dir=$(mktemp -d)
pid=""
databases=()
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
  for db in "${databases[@]}"; do psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# Limits wide open: the benchmark measures the sidecar, not its abuse limits.
cat >"$dir/config.template" <<YAML
data_dir: ./data
STORE
node:
  backend: dev
listeners:
  internal: { bind: 127.0.0.1:$base }
  public: { bind: 127.0.0.1:$((base + 1)) }
deposits:
  invoice_expiry: 30m
  reconcile_interval: RECONCILE
limits:
  max_held_deposits: 1000000
  max_held_deposits_per_prefix: 1000000
  max_unpaid_deposits: 1000000
  max_unpaid_deposits_per_prefix: 1000000
  challenge_mint_rate: { requests: 1000, per: 1s }
  challenge_mint_budget_per_s: 1000000
  max_long_polls: 100000
  # The load generator's clients are 10.0.0.0/8 in order: its waiters share one IPv4 /16.
  long_poll_share_pct: 100
routes:
  - id: api
    match: { path: { prefix: /api/ } }
    mode: pay
    token_lifetime: 1h
    pay: { amount_sat: 100 }
  - id: articles
    match: { path: { prefix: /articles/ } }
    mode: deposit
    token_lifetime: 1h
    deposit:
      amount_sat: 1000
      idle_timeout: 30m
      session_cap: 1h
YAML

# A fresh sidecar (empty data dir) per phase: the minting rounds leave thousands of unpaid
# deposits behind, which must not be counted in the memory of "10,000 held".
# $1: deposits.reconcile_interval (the default 30s while minting; 5s in the held phase, so
# memory is read after several reconcile passes over every live deposit).
start_sidecar() {
  rm -rf "$dir/data"
  local store_line=""
  if [ "$store" = postgres ]; then
    local db="lw_bench_$$_${#databases[@]}"
    psql -q "$pg/postgres" -c "CREATE DATABASE $db"
    databases+=("$db")
    store_line="store: { url: '$pg/$db' }"
  fi
  sed -e "s/RECONCILE/$1/" -e "s|^STORE\$|$store_line|" "$dir/config.template" >"$dir/lightning-wall.yaml"
  RUST_LOG=warn "$bin" serve --config "$dir/lightning-wall.yaml" >"$dir/sidecar.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$base/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$dir/sidecar.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "bench-sidecar: the sidecar did not start" >&2
  exit 1
}
stop_sidecar() { kill "$pid" && wait "$pid" 2>/dev/null; pid=""; }
run_load() {
  "$load" --internal "http://127.0.0.1:$base" --public "http://127.0.0.1:$((base + 1))" \
    --pid "$pid" --seconds "$secs" --concurrency "$conns" "$@"
}

echo "machine: $(nproc) cores, store: $store, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
start_sidecar 30s
echo "== minting (pay and deposit rounds alternate)"
run_load --rounds "$rounds" --held 0 --waiters 0 || status=$?
stop_sidecar
if [ "$status" -eq 0 ]; then
  start_sidecar 5s
  echo "== $held deposits held, then $waiters long-poll waiters (fresh sidecar)"
  run_load --rounds 0 --held "$held" --waiters "$waiters" --waiter-pay-per-s "$waiter_pay" || status=$?
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$status" -ne 0 ]; then
  echo "bench-sidecar: failed; sidecar log tail:" >&2
  tail -20 "$dir/sidecar.log" >&2
fi
exit "$status"
