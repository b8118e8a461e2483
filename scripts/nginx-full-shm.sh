#!/usr/bin/env bash
# Issue #17: the filter keeps serving in real nginx (1.27.4 + ngx_wasm_module, `make nginx`)
# after unpaid requests from 100,000 distinct client addresses have filled the shared-data zone
# (`shm_kv * 1m`, about 4,150 of the filter's keys; it writes up to 8,192 challenge-mint
# counters for them alone).
#
#   scripts/nginx-full-shm.sh    # SHM_ADDRESSES (100000), SHM_ZONE ("1m": the shm_kv size and
#                                # options), SHM_CONCURRENCY (128), SHM_PORT (18500) and the
#                                # next 4 ports; LW_NGINX_BIN=<binary> instead of `make nginx`'s
#
# Asserts: every one of the unpaid requests (a pay route, each from its own 127.x address, a new
# connection each) got the filter's 402; an address that had used up its mint limit before the
# flood gets a 402 again after it (its counter was evicted: the zone was full); a paid credential
# still gets 200 and an unpaid request 402; the same nginx workers still run, and error.log has
# no trap, panic, worker signal or critical line.
#
# The challenge call-outs reach the sidecar through a caching proxy in the same nginx: the
# sidecar mints one invoice and every other challenge gets a copy of its answer (100,000 real
# invoices would measure the dev node, not the filter's shared data). Everything else (bootstrap,
# syncs) reaches the sidecar as it is.
#
# A zone with `eviction=none` (SHM_ZONE="1m eviction=none") fails this: ngx_wasm_module traps
# the filter on a write to a full zone instead of returning a status (docs/filter.md "Hosts").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/stack-lib.sh
addresses=${SHM_ADDRESSES:-100000}
zone=${SHM_ZONE:-1m}
concurrency=${SHM_CONCURRENCY:-128}
base=${SHM_PORT:-18500}
wasm=$root/target/wasm/lightning_wall_filter.wasm
[ -f "$wasm" ] || { echo "nginx-full-shm: $wasm missing: run make wasm" >&2; exit 1; }
# Not $NGINX: nginx reads that variable itself (inherited listening sockets).
nginx=${LW_NGINX_BIN:-$(scripts/build-nginx.sh)}
if [ -z "${SHM_NO_BUILD:-}" ]; then
  cargo build --locked -q -p lightning-wall --bin lightning-wall
fi
sidecar=$root/target/debug/lightning-wall

stack_init nginx-full-shm
# nginx's workers (user nobody when started as root) write the challenge cache under it.
chmod 755 "$dir"
fail() { stack_fail "FAIL: $*"; }
stack_on_fail() {
  mkdir -p "$root/target" && cp "$dir/logs/error.log" "$root/target/nginx-full-shm.error.log" 2>/dev/null || true
  echo "nginx-full-shm: nginx's error.log kept in target/nginx-full-shm.error.log; its last lines:" >&2
  tail -n 20 "$dir/logs/error.log" >&2 || true
}

site=$base proxy=$((base + 1)) stub=$((base + 2)) internal=$((base + 3)) public=$((base + 4))
# A mint limit that lasts the whole run (3 challenges per address per hour): an address that used
# it up stays refused unless its counter leaves the shared data.
sidecar_config "$internal" "$public" "{ requests: 3, per: 1h }"
mkdir -p "$dir/logs"
cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
wasm {
    module lightning_wall $wasm;
    shm_kv * $zone;
}
http {
    access_log off;
    # As nginx/nginx.conf.
    proxy_wasm_request_headers_in_access on;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    proxy_cache_path $dir/cache keys_zone=challenge:1m;
    server {
        listen 127.0.0.1:$site;
        location / { return 200 "the upstream"; }
    }
    # The sidecar's internal API for the filter; its challenge answer minted once (see above).
    server {
        listen 127.0.0.1:$stub;
        location = /v1/challenge {
            proxy_pass http://127.0.0.1:$internal;
            proxy_cache challenge;
            proxy_cache_methods POST;
            proxy_cache_key \$uri;
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
            proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires;
        }
        location / { proxy_pass http://127.0.0.1:$internal; }
    }
    server {
        listen 127.0.0.1:$proxy;
        proxy_wasm lightning_wall '{"sidecar_cluster": "127.0.0.1:$stub", "timeout_ms": 5000, "failure_mode": "closed", "request_callouts_only": true, "refuse_own_headers": true}';
        location / { proxy_pass http://127.0.0.1:$site; }
    }
}
CONF
start_sidecar "$sidecar"
"$nginx" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
master=$!
pids+=("$master")
for p in "$site" "$stub" "$proxy" "$internal"; do wait_port "$p"; done

# A paid credential for the pay route, minted and paid through the sidecar's internal API.
paid_credential "$internal"
code() { # code [curl args…] URL-path: the status of one request on a new connection
  local path=${*: -1}
  curl -s -o /dev/null -w '%{http_code}' --max-time 30 "${@:1:$#-1}" "http://127.0.0.1:$proxy$path"
}
# Both workers bootstrapped and holding the revocation snapshot: the credential let through 20
# times in a row (new connections, spread over the workers).
ok=0
for _ in $(seq 1 200); do
  if [ "$(code -H "$auth" /api/x)" = 200 ]; then ok=$((ok + 1)); else ok=0; fi
  [ "$ok" -ge 20 ] && break
  sleep 0.05
done
[ "$ok" -ge 20 ] || fail "the filter never let the paid credential through"
# nginx's worker processes (the cache loader and manager are children too; the loader exits).
worker_pids() { ps -o pid=,args= --ppid "$master" | awk '/worker process/ { print $1 }' | sort | tr '\n' ' '; }
workers=$(worker_pids)

# An address that uses up its mint limit: three challenges, then 429.
early=()
for _ in 1 2 3 4; do early+=("$(code --interface 127.3.0.1 -H 'accept: application/json' /api/x)"); done
[ "${early[*]}" = "402 402 402 429" ] || fail "127.3.0.1 before the flood got ${early[*]}, not 402 402 402 429"

echo "nginx-full-shm: $addresses unpaid requests, each from its own address, shm_kv * $zone; load average $(cut -d' ' -f1-3 /proc/loadavg)"
result=$(python3 scripts/many_addresses.py "127.0.0.1:$proxy" /api/x "$addresses" "$concurrency")
echo "nginx-full-shm: $result"
got=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['statuses'].get('402', 0))" "$result")
[ "$got" = "$addresses" ] || fail "$got of $addresses unpaid requests got the filter's 402: $result"

# The zone was full: the mint counter of 127.3.0.1 was evicted to make room.
after=$(code --interface 127.3.0.1 -H 'accept: application/json' /api/x)
[ "$after" = 402 ] || fail "127.3.0.1 after the flood got $after, not 402: its mint counter is still in the zone, so the zone never filled"
# Still serving: a paid credential gets in, an unpaid request is refused.
for i in 1 2 3 4 5 6 7 8 9 10; do
  c=$(code -H "$auth" /api/x)
  [ "$c" = 200 ] || fail "the paid credential got $c after the flood (request $i), not 200"
done
c=$(code -H 'accept: application/json' /api/x)
[ "$c" = 402 ] || fail "an unpaid request got $c after the flood, not 402"
now=$(worker_pids)
[ "$now" = "$workers" ] || fail "nginx's workers changed during the run: $workers -> $now"
if grep -E -i 'signal|trap|panick|\[(crit|alert|emerg)\]' "$dir/logs/error.log" >"$dir/bad"; then
  fail "error.log: $(wc -l <"$dir/bad") line(s) like: $(head -n 3 "$dir/bad")"
fi
echo "nginx-full-shm: PASS: $addresses addresses, all 402; the zone full (an early mint counter evicted); paid 200, unpaid 402; workers $workers unchanged; error.log clean ($(wc -l <"$dir/logs/error.log") lines). Load average $(cut -d' ' -f1-3 /proc/loadavg)"
