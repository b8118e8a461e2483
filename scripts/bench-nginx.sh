#!/usr/bin/env bash
# Throughput of real nginx (1.27.4 + ngx_wasm_module, `make nginx`) with and without the filter,
# loaded by wrk (Debian's `wrk`, installed when missing and run as root) over keep-alive client
# connections, as nginx/nginx.conf serves clients. Set-ups measured in alternation on one nginx
# (one server block each, the same 2 workers), all proxying to a fixed 200 served by that nginx
# itself (`return 200`, upstream keep-alive):
#   plain        no filter (proxy_pass only)
#   noop         a no-op proxy-wasm filter built with the filter's SDK (bench/noop-filter)
#   noop_paid    the same, every request carrying the paid credential (the baseline for
#                wall_paid: the same bytes to parse and forward)
#   wall_paid    the lightning-wall filter, a pay route, every request with a valid credential
#   wall_free    the lightning-wall filter, a free route
# The filter bootstraps from a real sidecar (`lightning-wall serve`, dev node, SQLite in a temp
# dir); the credential is minted and paid through the sidecar's internal API.
#
#   scripts/bench-nginx.sh    # BENCH_ROUNDS (5) x 5 set-ups x BENCH_SECONDS (4) each,
#                             # BENCH_CONNECTIONS (16); BENCH_PORT (18400) and the next 5 ports;
#                             # LW_NGINX_BIN=<binary> instead of `make nginx`'s
#
# wrk shares the machine's cores with nginx: the ratios are the figures to read.
# Needs the filter and the no-op filter built (`make bench-nginx` does it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/stack-lib.sh
seconds=${BENCH_SECONDS:-4}
rounds=${BENCH_ROUNDS:-5}
conns=${BENCH_CONNECTIONS:-16}
wall_wasm=$root/target/wasm/lightning_wall_filter.wasm
noop_wasm=$root/target/wasm/noop_filter.wasm
base=${BENCH_PORT:-18400}

for w in "$wall_wasm" "$noop_wasm"; do
  [ -f "$w" ] || { echo "bench-nginx: $w missing: run make bench-nginx" >&2; exit 1; }
done
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "bench-nginx: needs wrk (apt-get install wrk)" >&2
    exit 1
  fi
fi
# Not $NGINX: nginx reads that variable itself (inherited listening sockets).
nginx=${LW_NGINX_BIN:-$(scripts/build-nginx.sh)}
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  cargo build --locked -q -p lightning-wall --bin lightning-wall
fi
# The sidecar only answers the filter's bootstrap and syncs here: a debug build is enough.
sidecar=target/debug/lightning-wall

stack_init bench-nginx
upstream=$base plain=$((base + 1)) noop=$((base + 2)) wall=$((base + 3))
internal=$((base + 4)) public=$((base + 5))
sidecar_config "$internal" "$public" "{ requests: 1000, per: 1s }"
mkdir -p "$dir/logs"
cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
wasm {
    module noop $noop_wasm;
    module lightning_wall $wall_wasm;
    shm_kv * 8m;
}
http {
    access_log off;
    # As nginx/nginx.conf: filters decide in the access phase, client keep-alive on.
    proxy_wasm_request_headers_in_access on;
    keepalive_requests 1000000;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    upstream bench_upstream {
        server 127.0.0.1:$upstream;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$upstream;
        location / { return 200 "ok"; }
    }
    server {
        listen 127.0.0.1:$plain;
        location / { proxy_pass http://bench_upstream; }
    }
    server {
        listen 127.0.0.1:$noop;
        proxy_wasm noop;
        location / { proxy_pass http://bench_upstream; }
    }
    server {
        listen 127.0.0.1:$wall;
        proxy_wasm lightning_wall '{"sidecar_cluster": "127.0.0.1:$internal", "request_callouts_only": true, "refuse_own_headers": true}';
        location / { proxy_pass http://bench_upstream; }
    }
}
CONF
start_sidecar "$root/$sidecar"
"$nginx" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" & pids+=($!)
for p in "$upstream" "$plain" "$noop" "$wall" "$internal"; do wait_port "$p"; done

# A paid credential for the pay route: challenge, then the dev node pays the invoice.
paid_credential "$internal"
# Each nginx worker bootstraps on its first tick and loads the revocation snapshot on its
# second; until then it fails closed. Ask until both have let the credential through a few
# times in a row (each curl is a new connection, spread over the workers).
ok=0
for _ in $(seq 1 200); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "$auth" "http://127.0.0.1:$wall/api/x")
  if [ "$code" = 200 ]; then ok=$((ok + 1)); else ok=0; fi
  [ "$ok" -ge 20 ] && break
  sleep 0.05
done
[ "$ok" -ge 20 ] || { echo "bench-nginx: the filter never let the paid credential through ($code)" >&2; tail -n 20 "$dir/logs/error.log" >&2; exit 1; }
# What is measured is the filter deciding: an unpaid request is refused, also on a kept-alive
# connection after an allowed one.
unpaid=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wall/api/x")
[ "$unpaid" = 402 ] || { echo "bench-nginx: an unpaid request got $unpaid, not 402" >&2; exit 1; }
both=$(curl -s -o /dev/null -w '%{http_code}' -H "$auth" "http://127.0.0.1:$wall/api/x" \
  --next -s -o /dev/null -w ' %{http_code}' "http://127.0.0.1:$wall/api/x")
[ "$both" = "200 402" ] || { echo "bench-nginx: paid then unpaid on one connection got $both, not 200 402" >&2; exit 1; }
free=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wall/free")
[ "$free" = 200 ] || { echo "bench-nginx: the free route got $free, not 200" >&2; exit 1; }

# wrk: C keep-alive connections for S seconds; every answer must be a 200 (wrk reports any
# other status and socket errors, and the run is refused then).
run() { wrk -t2 -c"$conns" -d"${secs:-$seconds}s" "$@" 2>&1; }
rps() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$1"; }
clean() { ! grep -q 'Non-2xx or 3xx responses\|Socket errors' <<<"$1"; }
declare -A all
declare -a paired
setups=(plain noop noop_paid wall_paid wall_free)
measure() {
  case $1 in
    plain) run "http://127.0.0.1:$plain/api/x" ;;
    noop) run "http://127.0.0.1:$noop/api/x" ;;
    noop_paid) run -H "$auth" "http://127.0.0.1:$noop/api/x" ;;
    wall_paid) run -H "$auth" "http://127.0.0.1:$wall/api/x" ;;
    wall_free) run "http://127.0.0.1:$wall/free" ;;
  esac
}
# Warm every path (connections, compiled modules, the verified-credential cache).
for s in "${setups[@]}"; do
  out=$(secs=1 measure "$s")
  clean "$out" || { echo "bench-nginx: $s (warm-up): $out" >&2; tail -n 20 "$dir/logs/error.log" >&2; exit 1; }
done
echo "Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$rounds"); do
  line="round $i:"
  for s in "${setups[@]}"; do
    out=$(measure "$s")
    clean "$out" || { echo "bench-nginx: $s: $out" >&2; exit 1; }
    all[$s]="${all[$s]:-} $(rps "$out")"
    line="$line $s $(rps "$out")"
  done
  echo "$line requests/s"
  # The load of other work drifts between rounds: the ratio within a round (noop_paid and
  # wall_paid measured one after the other) is the steadier figure.
  paired+=("$(awk -v n="${all[noop_paid]##* }" -v w="${all[wall_paid]##* }" 'BEGIN { printf "%.3f", n / w }')")
done
ratio_table "$rounds" "$seconds" "$conns keep-alive connections, 2 nginx workers" "${setups[@]}"
echo
cost=$(echo "${paired[@]}" | median)
verdict=$(awk -v c="$cost" 'BEGIN { print (c <= 1.25 ? "met" : "NOT met") }')
echo "Per-request cost of wall_paid against noop_paid, median of the rounds' ratios: ${cost}x (rounds: ${paired[*]}); target <= 1.25x: $verdict"
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
