#!/usr/bin/env bash
# Throughput of the development gateway (lightning-wall-host serve): plain forwarding vs. the
# same binary running the no-op conformance filter, against a fixed-response upstream, with the
# built-in closed-loop load generator. Prints requests/s for both and the ratio.
#
#   scripts/bench-gateway.sh    # BENCH_ROUNDS (3) x 2 runs of BENCH_SECONDS (4), BENCH_CONNECTIONS
#                               # (16), BENCH_WORKERS (2), BENCH_WASM (no-op conformance filter)
#
# All processes share this machine's cores (and other builds may be running), so the two modes
# are measured in alternation and the median of each is compared: the ratio is the figure to
# read, not the absolute numbers. Needs `make wasm` first (the Makefile target does it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${BENCH_SECONDS:-4}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNECTIONS:-16}
workers=${BENCH_WORKERS:-2}
wasm=${BENCH_WASM:-target/wasm/conformance_filter.wasm}
config=${BENCH_PLUGIN_CONFIG:-noop=1}
base=${BENCH_PORT:-18300}

[ -f "$wasm" ] || { echo "bench-gateway: $wasm missing: run make wasm" >&2; exit 1; }
cargo build --release --locked -q -p lightning-wall-host
bin=target/release/lightning-wall-host

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-gateway: nothing listening on port $1" >&2
  exit 1
}

RUST_LOG=error "$bin" bench-upstream --listen "127.0.0.1:$base" & pids+=($!)
RUST_LOG=error "$bin" serve --listen "127.0.0.1:$((base + 1))" \
  --upstream "http://127.0.0.1:$base" --workers "$workers" & pids+=($!)
RUST_LOG=error "$bin" serve --listen "127.0.0.1:$((base + 2))" \
  --upstream "http://127.0.0.1:$base" --workers "$workers" \
  --wasm "$wasm" --plugin-config "$config" & pids+=($!)
for p in "$base" $((base + 1)) $((base + 2)); do wait_port "$p"; done

run() { "$bin" load --url "http://127.0.0.1:$1/bench" --connections "$conns" --seconds "$secs"; }
# Warm both paths (connections, JIT-compiled module already loaded) before measuring.
"$bin" load --url "http://127.0.0.1:$((base + 1))/" --connections 4 --seconds 1 >/dev/null
"$bin" load --url "http://127.0.0.1:$((base + 2))/" --connections 4 --seconds 1 >/dev/null
rps() { sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$1"; }
median() { tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
plain_all=""
filtered_all=""
for i in $(seq 1 "$rounds"); do
  p=$(run $((base + 1)))
  f=$(run $((base + 2)))
  echo "round $i: plain $(rps "$p") rps, filtered $(rps "$f") rps"
  plain_all="$plain_all $(rps "$p")"
  filtered_all="$filtered_all $(rps "$f")"
done
plain=$(echo $plain_all | median)
filtered=$(echo $filtered_all | median)
echo "plain forwarding (median):   $plain requests/s"
echo "with $(basename "$wasm") ($config) (median): $filtered requests/s"
awk -v a="$filtered" -v b="$plain" \
  'BEGIN { printf "throughput ratio filtered/plain: %.3f (overhead %.1f%%)\n", a / b, (1 - a / b) * 100 }'
