#!/usr/bin/env bash
# `make bench`: every benchmark of the project in one run, written to bench/RESULTS.md (machine,
# load, toolchain, commit, and for each section the command that produced it). Every figure is a
# ratio against a baseline measured in the same run. About 5–10 minutes after the builds.
#
#   bench/run.sh [OUTPUT]     (default bench/RESULTS.md; BENCH_NOTE=text adds a note on the run)
#
# Needs: make wasm (the Makefile target does it), python3 with pymacaroons (make test-deps),
# node + npm (bench/peers: npm ci), PostgreSQL at 127.0.0.1:5432 with trust auth for the
# sidecar's PostgreSQL section (BENCH_PG overrides; the section is marked skipped without it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-bench/RESULTS.md}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
section() { echo "bench: $*" >&2; }

sections=${BENCH_SECTIONS:-l402 filter gateway nginx peers sidecar leave}
want() { [[ " $sections " == *" $1 "* ]]; }

# Build everything first, so the load figures below are not taken during our own compiles.
section "building (release, benches) for: $sections"
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  if want gateway || want sidecar; then
    cargo build --locked --release -q -p lightning-wall --bin lightning-wall --example sidecar_bench
  fi
  if want gateway; then cargo build --locked --release -q -p lightning-wall-host --bin lightning-wall-host; fi
  # nginx with ngx_wasm_module: cached in ~/.cache/lightning-wall (10-47 min the first time).
  if want nginx; then scripts/build-nginx.sh >/dev/null && cargo build --locked -q -p lightning-wall --bin lightning-wall; fi
  if want peers; then cargo build --locked --release -q -p l402 --example peer_token; fi
  if want l402; then cargo bench --locked -q -p l402 --bench verify --no-run; fi
  if want filter; then cargo bench --locked -q -p lightning-wall-filter --bench request --no-run; fi
fi
if want peers; then
  python3 -c 'import pymacaroons' 2>/dev/null || \
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check 'pymacaroons==0.13.0'
  (cd bench/peers && npm ci --silent --no-audit --no-fund)
fi

started=$(date +%s)
load_start=$(loadavg)
{
  echo "# Benchmark results"
  echo
  echo "Produced by \`make bench\` (= \`bench/run.sh\`). Every figure is a ratio against a baseline"
  echo "measured in the same run, on the same machine, under the same load."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date | $(date -u '+%F %H:%M UTC') |"
  echo "| commit | $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/RESULTS.md' || echo ' (with uncommitted changes)') |"
  echo "| CPU | $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(nproc) cores |"
  echo "| memory | $(free -g | awk '/^Mem:/ { print $2 " GiB" }') |"
  echo "| rustc | $(rustc --version) |"
  echo "| python / node | $(python3 --version | cut -d' ' -f2) / $(node --version) |"
  echo "| load average at start | $load_start |"
  echo "| load average at end | LOAD_END |"
  echo "| sections run | $sections |"
  if [ -n "${BENCH_NOTE:-}" ]; then echo "| note | $BENCH_NOTE |"; fi
  echo
} >"$tmp/head.md"

if want l402; then
section "l402 criterion"
cargo bench --locked -q -p l402 --bench verify -- --warm-up-time 1 --measurement-time 3 \
  >"$tmp/l402.log" 2>&1 || { cat "$tmp/l402.log" >&2; exit 1; }
{
  echo "## l402: verification and parsing against the bare HMAC chain"
  echo
  echo "Command: \`cargo bench --locked -p l402 --bench verify -- --warm-up-time 1 --measurement-time 3\`."
  echo "The floor (\`floor/hmac_chain_5_caveats\`) is the same SHA-256 work as a verification (root"
  echo "key, HMAC chain over the identifier and 5 caveats, preimage hash) with the \`hmac\` crate and"
  echo "nothing else. \`cpu/…\` rows are timed in thread CPU time (robust to a shared machine) and"
  echo "compared to the floor timed the same way. Target: verification ≤ 3× the floor."
  echo
  python3 bench/criterion_medians.py target/criterion "$started" floor/hmac_chain_5_caveats \
    verify parse_authorization floor cpu/
  echo
} >"$tmp/l402.md"

else
  printf '## l402: verification and parsing against the bare HMAC chain\n\nNot run in this invocation (BENCH_SECTIONS="%s"); `make bench` runs it.\n\n' "$sections" >"$tmp/l402.md"
fi
if want filter; then
section "filter in the host"
filter_started=$(date +%s)
cargo bench --locked -q -p lightning-wall-filter --bench request \
  >"$tmp/filter.log" 2>&1 || { cat "$tmp/filter.log" >&2; exit 1; }
{
  echo "## Filter: per-request cost in the wasmtime host against the no-op filter"
  echo
  echo "Command: \`make bench-filter\` (= \`cargo bench --locked -p lightning-wall-filter --bench request\`)."
  echo "Each request goes through the real \`.wasm\` in the project's proxy-wasm host (wasmtime):"
  echo "\`valid_pay_credential\` is the hot path (a credential this worker verified before: cache"
  echo "lookup, revocation, headers), \`valid_pay_credential_first_seen\` the full verification"
  echo "(parse, MAC chain, caveats, preimage), \`free_route\` a route without payment,"
  echo "\`challenge_402_sidecar_in_process\` the 402 path with the sidecar's answer served in-process."
  echo "Baselines: \`noop_filter\` (no host call) on a request without a credential, as the free and"
  echo "challenge scenarios send; \`noop_filter_paid_shape\` on the paid scenarios' request (with its"
  echo "Authorization header); \`abi_floor\` makes exactly the host calls the hot path needs (header"
  echo "map read, clock, two headers set, three response headers read) and nothing else. Target: hot"
  echo "path ≤ 1.25× the no-op filter."
  echo
  python3 bench/criterion_medians.py target/criterion "$filter_started" \
    filter_per_request/noop_filter,filter_per_request/noop_filter_paid_shape,filter_per_request/abi_floor \
    filter_per_request/
  echo
} >"$tmp/filter.md"

else
  printf '## Filter: per-request cost in the wasmtime host against the no-op filter\n\nNot run in this invocation (BENCH_SECTIONS="%s"); `make bench` runs it.\n\n' "$sections" >"$tmp/filter.md"
fi
if want gateway; then
section "gateway throughput"
BENCH_NO_BUILD=1 scripts/bench-gateway.sh >"$tmp/gateway.log" 2>&1 || { cat "$tmp/gateway.log" >&2; exit 1; }
{
  echo "## Gateway: throughput with and without the filter"
  echo
  echo "Command: \`make bench-gateway\` (= \`scripts/bench-gateway.sh\`). The development gateway"
  echo "(\`lightning-wall-host serve\`, hyper + wasmtime) in front of a fixed 200 upstream, loaded by"
  echo "its closed-loop generator (\`lightning-wall-host load\`) on the same 2 cores; set-ups measured"
  echo "in alternation. \`wall_paid\`: every request carries a valid paid credential (minted and paid"
  echo "through a real sidecar with the dev node); \`wall_free\`: a free route of the same policy;"
  echo "\`noop_paid\`: the no-op filter loaded with the same requests as \`wall_paid\` (the same"
  echo "Authorization header to parse and forward), its baseline in the last column."
  echo
  sed -n '/^| set-up/,$p' "$tmp/gateway.log"
  echo
  echo "Rounds: $(grep -c '^round' "$tmp/gateway.log"); per round (requests/s):"
  echo
  sed -n 's/^round \(.*\)$/- round \1/p' "$tmp/gateway.log"
  echo
} >"$tmp/gateway.md"

else
  printf '## Gateway: throughput with and without the filter\n\nNot run in this invocation (BENCH_SECTIONS="%s"); `make bench` runs it.\n\n' "$sections" >"$tmp/gateway.md"
fi
if want nginx; then
section "nginx throughput"
BENCH_NO_BUILD=1 scripts/bench-nginx.sh >"$tmp/nginx.log" 2>&1 || { cat "$tmp/nginx.log" >&2; exit 1; }
{
  echo "## nginx: throughput with and without the filter"
  echo
  echo "Command: \`make bench-nginx\` (= \`scripts/bench-nginx.sh\`). Real nginx 1.27.4 with"
  echo "ngx_wasm_module (\`make nginx\`, 2 workers, filters in the access phase as in"
  echo "\`nginx/nginx.conf\`) in front of a fixed 200 (\`return 200\` in the same nginx), loaded by wrk"
  echo "(2 threads, 16 keep-alive connections) on the same cores; set-ups measured in alternation on"
  echo "one nginx. \`plain\`: no filter; \`noop\`/\`noop_paid\`: a no-op proxy-wasm filter built with the"
  echo "filter's SDK (\`bench/noop-filter\`), without and with the paid request's Authorization header;"
  echo "\`wall_paid\`: the filter, every request with a valid paid credential (its verified-credential"
  echo "cache after the first); \`wall_free\`: a free route. Target (issue #17): a per-request cost of"
  echo "\`wall_paid\` at most 1.25x \`noop_paid\`'s."
  echo
  echo "The nginx L402 module \`ngx_l402\` is not a row: it is not on crates.io and was not built"
  echo "from its source here (docs/filter.md \"Cost\")."
  echo
  sed -n '/^| set-up/,$p' "$tmp/nginx.log"
  echo
  echo "Per round (requests/s):"
  echo
  sed -n 's/^round \(.*\)$/- round \1/p' "$tmp/nginx.log"
  echo
} >"$tmp/nginx.md"
else
  printf '## nginx: throughput with and without the filter\n\nNot run in this invocation (BENCH_SECTIONS="%s"); `make bench` runs it.\n\n' "$sections" >"$tmp/nginx.md"
fi
if want peers; then
section "peers"
token=$(target/release/examples/peer_token 3)
native=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["verifications_per_second"])' "$token")
py=$(python3 bench/peers/pymacaroons_verify.py 3 <<<"$token")
js=$(node bench/peers/macaroon_verify.js 3 <<<"$token")
rate() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])["verifications_per_second"])' "$1"; }
{
  echo "## Peers: token verification throughput"
  echo
  echo "Commands: \`cargo run --release -p l402 --example peer_token -- 3\` (native l402),"
  echo "\`bench/peers/pymacaroons_verify.py 3\` (pymacaroons 0.13.0 from PyPI) and"
  echo "\`node bench/peers/macaroon_verify.js 3\` (npm \`macaroon\` 3.0.4, pinned in"
  echo "\`bench/peers/package-lock.json\`), each fed the same token (pay mode, 5 first-party"
  echo "caveats, from \`peer_token\`). Each is one thread looping for 3 s over the same complete"
  echo "verification of the \`Authorization\` value: parse it, decode the V2 macaroon, pick the"
  echo "master key named by \`lw_key\`, derive the token's root key (HMAC-SHA256(master,"
  echo "SHA-256(identifier))), check the MAC chain with each caveat checked for its meaning"
  echo "(services, expiry, mode, route, key id), check the preimage against the payment hash. Each"
  echo "peer first proves it rejects a wrong preimage. In the peers, the MAC chain is the library's"
  echo "(pymacaroons: Python's hmac/hashlib; npm macaroon: sjcl, pure JavaScript); the caveat checks,"
  echo "root key and preimage are the benchmark's own code around it (hashlib / node:crypto)."
  echo
  echo "| implementation | verifications/s | ratio to l402 (native) |"
  echo "|---|---:|---:|"
  for pair in "l402 (Rust, native, this repo)|$native" "pymacaroons 0.13.0 (Python $(python3 --version | cut -d' ' -f2))|$(rate "$py")" \
    "npm macaroon 3.0.4 (node $(node --version))|$(rate "$js")"; do
    awk -F'|' -v n="$native" '{ printf "| %s | %.0f | %.4f |\n", $1, $2, $2 / n }' <<<"$pair"
  done
  echo
} >"$tmp/peers.md"

else
  printf '## Peers: token verification throughput\n\nNot run in this invocation (BENCH_SECTIONS="%s"); `make bench` runs it.\n\n' "$sections" >"$tmp/peers.md"
fi
if want sidecar; then
section "sidecar (SQLite)"
BENCH_NO_BUILD=1 scripts/bench-sidecar.sh >"$tmp/sidecar-sqlite.log" 2>&1 || { cat "$tmp/sidecar-sqlite.log" >&2; exit 1; }
pg_ok=1
if psql -q "$pg/postgres" -c 'select 1' >/dev/null 2>&1; then
  section "sidecar (PostgreSQL)"
  BENCH_NO_BUILD=1 BENCH_STORE=postgres BENCH_PG="$pg" scripts/bench-sidecar.sh \
    >"$tmp/sidecar-pg.log" 2>&1 || { cat "$tmp/sidecar-pg.log" >&2; exit 1; }
else
  pg_ok=0
fi
{
  echo "## Sidecar: challenge minting, 10,000 held deposits, long-poll waiters"
  echo
  echo "Command: \`make bench-sidecar\` (= \`scripts/bench-sidecar.sh\`; PostgreSQL: \`BENCH_STORE=postgres"
  echo "scripts/bench-sidecar.sh\`, a fresh database per phase, dropped after). \`lightning-wall serve\`"
  echo "(release) with the dev node, loaded over HTTP on loopback by \`sidecar/examples/sidecar_bench.rs\`"
  echo "on the same cores: minting rounds alternate pay and deposit routes (32 connections, distinct"
  echo "client addresses); then, on a fresh sidecar, 10,000 deposits are minted, paid and held, and"
  echo "1,000 long-poll waiters parked and answered. The baseline of each ratio: the same measure on"
  echo "SQLite in this run."
  echo
  # The bench prints markdown tables (header, |---| rule, rows), one after the other.
  table() { awk '/^\| measure/ { if (seen) print ""; seen = 1 } seen && /^\|/ { print }' "$1"; }
  echo "### SQLite"
  echo
  table "$tmp/sidecar-sqlite.log"
  echo
  if [ "$pg_ok" = 1 ]; then
    echo "### PostgreSQL ($(psql -tA "$pg/postgres" -c 'show server_version'), 127.0.0.1)"
    echo
    table "$tmp/sidecar-pg.log"
    echo
    python3 - "$tmp/sidecar-sqlite.log" "$tmp/sidecar-pg.log" <<'PY'
import re, sys
def figures(path):
    text = open(path).read()
    f = {}
    for name in ("pay", "deposit"):
        m = re.search(rf"\| {name} challenges minted \| (\d+)/s", text)
        if m: f[f"{name} challenges minted (/s)"] = float(m.group(1))
    m = re.search(r"sidecar RSS with them held \| VmRSS (\d+) kB", text)
    if m: f["RSS with 10,000 held (MiB)"] = float(m.group(1)) / 1024
    return f
s, p = figures(sys.argv[1]), figures(sys.argv[2])
print("| measure | SQLite | PostgreSQL | PostgreSQL / SQLite |")
print("|---|---:|---:|---:|")
for k in s:
    if k in p:
        print(f"| {k} | {s[k]:.0f} | {p[k]:.0f} | {p[k] / s[k]:.2f}× |")
PY
  else
    echo "### PostgreSQL: skipped (no server at $pg)"
  fi
  echo
  echo "Load average during the sidecar runs: SQLite: $(grep -o 'load average before: .*' "$tmp/sidecar-sqlite.log" | cut -d' ' -f4-), after $(grep -o 'load average after: .*' "$tmp/sidecar-sqlite.log" | cut -d' ' -f4-)."
  echo
} >"$tmp/sidecar.md"

else
  printf '## Sidecar: challenge minting, 10,000 held deposits, long-poll waiters\n\nNot run in this invocation (BENCH_SECTIONS="%s"); `make bench` runs it.\n\n' "$sections" >"$tmp/sidecar.md"
fi
if want leave; then
section "leave to refund on the demo"
scripts/demo.sh --run scripts/bench-leave.sh >"$tmp/leave.log" 2>"$tmp/leave.err" || { cat "$tmp/leave.err" >&2; exit 1; }
{
  echo "## Leave: refund on the node after the visitor leaves"
  echo
  echo "Command: \`make bench-leave\` (= \`scripts/demo.sh --run scripts/bench-leave.sh\`): 200 honest"
  echo "visitors on the demo stack (sidecar with the dev node and SQLite, the demo site, the filter in"
  echo "the development gateway), 4 at a time, each takes a deposit, reads a page and leaves; the time"
  echo "from sending \`POST /.well-known/lightning-wall/leave\` to the dev node reporting the hold"
  echo "invoice CANCELED (polled every 10 ms). It includes \`deposits.leave_grace\` (1 s), the window"
  echo "in which a forfeit already decided still wins (docs/reliability.md). Target: p99 ≤ 2 s."
  echo
  cat "$tmp/leave.log"
  echo
} >"$tmp/leave.md"
else
  printf '## Leave: refund on the node after the visitor leaves\n\nNot run in this invocation (BENCH_SECTIONS="%s"); `make bench` runs it.\n\n' "$sections" >"$tmp/leave.md"
fi
load_end=$(loadavg)
sed "s/LOAD_END/$load_end/" "$tmp/head.md" >"$out"
cat "$tmp/l402.md" "$tmp/filter.md" "$tmp/gateway.md" "$tmp/nginx.md" "$tmp/peers.md" "$tmp/sidecar.md" "$tmp/leave.md" >>"$out"
echo "bench: wrote $out in $(( $(date +%s) - started )) s (after the builds)" >&2
