#!/usr/bin/env bash
# Throughput of real nginx (1.27.4 + ngx_wasm_module, `make nginx`) with and without the filter,
# loaded by ApacheBench (`ab`, a connection per request as nginx/nginx.conf has it; Debian's
# apache2-utils, installed when missing and run as root), set-ups measured in alternation on one nginx (one server block each, the same 2
# workers), all proxying to a fixed 200 served by that nginx itself (`return 200`, keep-alive):
#   plain        no filter (proxy_pass only)
#   noop         a no-op proxy-wasm filter (bench/nginx/noop.wat: no host call)
#   noop_paid    the same, every request carrying the paid credential (the baseline for
#                wall_paid: the same bytes to parse and forward)
#   wall_paid    the lightning-wall filter, a pay route, every request with a valid credential
#   wall_free    the lightning-wall filter, a free route
# The filter bootstraps from a real sidecar (`lightning-wall serve`, dev node, SQLite in a temp
# dir); the credential is minted and paid through the sidecar's internal API.
#
#   scripts/bench-nginx.sh    # BENCH_ROUNDS (3) x 5 set-ups x BENCH_REQUESTS (20000),
#                             # BENCH_CONNECTIONS (16); BENCH_PORT (18400) and the next 5 ports
#
# ab shares the machine's cores with nginx: the ratios are the figures to read.
# Needs `make wasm` first (the Makefile does it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
requests=${BENCH_REQUESTS:-20000}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNECTIONS:-16}
wall_wasm=$root/target/wasm/lightning_wall_filter.wasm
noop_wat=$root/bench/nginx/noop.wat
base=${BENCH_PORT:-18400}

[ -f "$wall_wasm" ] || { echo "bench-nginx: $wall_wasm missing: run make wasm" >&2; exit 1; }
if ! command -v ab >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null
  else
    echo "bench-nginx: needs ab (apt-get install apache2-utils)" >&2
    exit 1
  fi
fi
nginx=$(scripts/build-nginx.sh)
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  cargo build --locked -q -p lightning-wall --bin lightning-wall
fi
# The sidecar only answers the filter's bootstrap and syncs here: a debug build is enough.
sidecar=target/debug/lightning-wall

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-nginx: nothing listening on port $1" >&2
  exit 1
}

upstream=$base plain=$((base + 1)) noop=$((base + 2)) wall=$((base + 3))
internal=$((base + 4)) public=$((base + 5))
cat >"$dir/lightning-wall.yaml" <<YAML
data_dir: ./data
node: { backend: dev }
listeners:
  internal: { bind: 127.0.0.1:$internal }
  public: { bind: 127.0.0.1:$public }
limits:
  challenge_mint_rate: { requests: 1000, per: 1s }
routes:
  - id: free
    match: { path: { prefix: /free } }
    mode: free
  - id: api
    match: { path: { prefix: /api/ } }
    mode: pay
    token_lifetime: 24h
    pay: { amount_sat: 10 }
YAML
mkdir -p "$dir/logs"
cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
wasm {
    module noop $noop_wat;
    module lightning_wall $wall_wasm;
    shm_kv * 8m;
}
http {
    access_log off;
    # As nginx/nginx.conf: no client keep-alive (with it, a request following another on the
    # same connection can pass the filter undecided; docs/deployment.md "nginx"). The same for
    # every set-up; the upstream connections keep alive.
    keepalive_timeout 0;
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
        keepalive_timeout 75s;
        keepalive_requests 1000000;
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
(cd "$dir" && RUST_LOG=warn "$root/$sidecar" serve --config lightning-wall.yaml >"$dir/sidecar.log" 2>&1) &
pids+=($!)
"$nginx" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" & pids+=($!)
for p in "$upstream" "$plain" "$noop" "$wall" "$internal"; do wait_port "$p"; done

# A paid credential for the pay route: challenge, then the dev node pays the invoice.
challenge=$(curl -fsS -X POST "http://127.0.0.1:$internal/v1/challenge" \
  -H 'content-type: application/json' -d '{"route_id": "api", "client_ip": "127.0.0.1"}')
field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
macaroon=$(field macaroon <<<"$challenge")
invoice=$(field invoice <<<"$challenge")
preimage=$(curl -fsS -X POST "http://127.0.0.1:$internal/v1/dev/pay" \
  -H 'content-type: application/json' -d "{\"invoice\": \"$invoice\"}" | field preimage)
auth="authorization: L402 $macaroon:$preimage"
# Each nginx worker bootstraps on its first tick; until then it fails closed. Ask until both
# have let the credential through a few times in a row.
ok=0
for _ in $(seq 1 200); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "$auth" "http://127.0.0.1:$wall/api/x")
  if [ "$code" = 200 ]; then ok=$((ok + 1)); else ok=0; fi
  [ "$ok" -ge 20 ] && break
  sleep 0.05
done
[ "$ok" -ge 20 ] || { echo "bench-nginx: the filter never let the paid credential through ($code)" >&2; tail -n 20 "$dir/logs/error.log" >&2; exit 1; }
unpaid=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wall/api/x")
[ "$unpaid" = 402 ] || { echo "bench-nginx: an unpaid request got $unpaid, not 402" >&2; exit 1; }
free=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wall/free")
[ "$free" = 200 ] || { echo "bench-nginx: the free route got $free, not 200" >&2; exit 1; }

# ab: N requests over C connections (one request each: nginx closes them); every answer must be
# a 200.
run() { ab -q -n "$requests" -c "$conns" "$@" 2>&1; }
rps() { sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' <<<"$1"; }
errors() {
  local failed non2xx
  failed=$(sed -n 's/^Failed requests: *\([0-9]*\).*/\1/p' <<<"$1")
  non2xx=$(sed -n 's/^Non-2xx responses: *\([0-9]*\).*/\1/p' <<<"$1")
  echo $(( ${failed:-1} + ${non2xx:-0} ))
}
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
declare -A all
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
# Warm every path (connections, compiled modules) before measuring.
for s in "${setups[@]}"; do requests=2000 measure "$s" >/dev/null; done
for i in $(seq 1 "$rounds"); do
  line="round $i:"
  for s in "${setups[@]}"; do
    out=$(measure "$s")
    if [ "$(errors "$out")" != 0 ]; then
      echo "bench-nginx: $s: $out" >&2
      exit 1
    fi
    all[$s]="${all[$s]:-} $(rps "$out")"
    line="$line $s $(rps "$out")"
  done
  echo "$line requests/s"
done
declare -A med
for s in "${setups[@]}"; do med[$s]=$(echo ${all[$s]} | median); done
echo
echo "| set-up | requests/s (median of $rounds x $requests requests, $conns connections, 2 nginx workers) | ratio to plain | ratio to noop | ratio to noop on the same request |"
echo "|---|---:|---:|---:|---:|"
for s in "${setups[@]}"; do
  same=${med[noop]}
  case $s in noop_paid | wall_paid) same=${med[noop_paid]} ;; esac
  awk -v s="$s" -v r="${med[$s]}" -v p="${med[plain]}" -v n="${med[noop]}" -v m="$same" \
    'BEGIN { printf "| %s | %.0f | %.3f | %.3f | %.3f |\n", s, r, r / p, r / n, r / m }'
done
