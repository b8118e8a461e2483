#!/usr/bin/env bash
# Throughput of the development gateway (lightning-wall-host serve) against a fixed-response
# upstream, with the built-in closed-loop load generator, in four set-ups measured in
# alternation:
#   plain        no filter (forwarding only)
#   noop         the no-op conformance filter (the cost of running any proxy-wasm filter)
#   noop_paid    the same, every request carrying the paid credential (the baseline for
#                wall_paid: the same bytes to parse and forward)
#   wall_paid    the lightning-wall filter, a pay route, every request with a valid credential
#                (the hot path: parse, MAC chain, caveats, preimage, revocation lookup)
#   wall_free    the lightning-wall filter, a free route
# The lightning-wall filter bootstraps from a real sidecar (`lightning-wall serve`, dev node,
# SQLite in a temp dir); the credential is minted and paid through the sidecar's internal API.
# Prints requests/s per set-up (median of the rounds) and the ratios.
#
#   scripts/bench-gateway.sh    # BENCH_ROUNDS (3) x 4 set-ups x BENCH_SECONDS (4),
#                               # BENCH_CONNECTIONS (16), BENCH_WORKERS (2)
#
# All processes share this machine's cores (and other builds may be running): the ratios are
# the figures to read, not the absolute numbers. Needs `make wasm` first (the Makefile does it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/stack-lib.sh
secs=${BENCH_SECONDS:-4}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNECTIONS:-16}
workers=${BENCH_WORKERS:-2}
noop_wasm=target/wasm/conformance_filter.wasm
wall_wasm=target/wasm/lightning_wall_filter.wasm
base=${BENCH_PORT:-18300}

for w in "$noop_wasm" "$wall_wasm"; do
  [ -f "$w" ] || { echo "bench-gateway: $w missing: run make wasm" >&2; exit 1; }
done
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked -q -p lightning-wall-host -p lightning-wall --bin lightning-wall-host --bin lightning-wall
fi
bin=target/release/lightning-wall-host
sidecar=target/release/lightning-wall

stack_init bench-gateway
upstream=$base plain=$((base + 1)) noop=$((base + 2)) wall=$((base + 3))
internal=$((base + 4)) public=$((base + 5))
sidecar_config "$internal" "$public" "{ requests: 1000, per: 1s }"
start_sidecar "$root/$sidecar"
RUST_LOG=error "$bin" bench-upstream --listen "127.0.0.1:$upstream" & pids+=($!)
RUST_LOG=error "$bin" serve --listen "127.0.0.1:$plain" \
  --upstream "http://127.0.0.1:$upstream" --workers "$workers" & pids+=($!)
RUST_LOG=error "$bin" serve --listen "127.0.0.1:$noop" \
  --upstream "http://127.0.0.1:$upstream" --workers "$workers" \
  --wasm "$noop_wasm" --plugin-config noop=1 & pids+=($!)
RUST_LOG=error "$bin" serve --listen "127.0.0.1:$wall" \
  --upstream "http://127.0.0.1:$upstream" --workers "$workers" --log-level warn \
  --wasm "$wall_wasm" --plugin-config '{"sidecar_cluster": "sidecar"}' \
  --cluster "sidecar=http://127.0.0.1:$internal" & pids+=($!)
for p in "$upstream" "$plain" "$noop" "$wall" "$internal"; do wait_port "$p"; done

# A paid credential for the pay route: challenge, then the dev node pays the invoice.
paid_credential "$internal"
# The filter bootstraps on its first tick; until then it fails closed.
for _ in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "$auth" "http://127.0.0.1:$wall/api/x")
  [ "$code" = 200 ] && break
  sleep 0.1
done
[ "$code" = 200 ] || stack_fail "the filter never let the paid credential through ($code)"
unpaid=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wall/api/x")
[ "$unpaid" = 402 ] || stack_fail "an unpaid request got $unpaid, not 402"

run() { "$bin" load --connections "$conns" --seconds "$secs" "$@"; }
rps() { sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$1"; }
errors() { sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$1"; }
declare -A all
setups=(plain noop noop_paid wall_paid wall_free)
measure() {
  case $1 in
    plain) run --url "http://127.0.0.1:$plain/api/x" ;;
    noop) run --url "http://127.0.0.1:$noop/api/x" ;;
    noop_paid) run --url "http://127.0.0.1:$noop/api/x" --header "$auth" ;;
    wall_paid) run --url "http://127.0.0.1:$wall/api/x" --header "$auth" ;;
    wall_free) run --url "http://127.0.0.1:$wall/free" ;;
  esac
}
# Warm every path (connections, compiled modules) before measuring.
for s in "${setups[@]}"; do secs=1 measure "$s" >/dev/null; done
for i in $(seq 1 "$rounds"); do
  line="round $i:"
  for s in "${setups[@]}"; do
    out=$(measure "$s")
    if [ "$(errors "$out")" != 0 ]; then
      echo "bench-gateway: $s: $out" >&2
      exit 1
    fi
    all[$s]="${all[$s]:-} $(rps "$out")"
    line="$line $s $(rps "$out")"
  done
  echo "$line requests/s"
done
ratio_table "$rounds" "$secs" "$conns connections, $workers workers" "${setups[@]}"
