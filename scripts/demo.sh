#!/usr/bin/env bash
# The demo: the lightning-wall sidecar (DEVELOPMENT node, SQLite), the demo site as upstream,
# and Envoy with envoy/envoy.yaml when an `envoy` binary is on the PATH, else the development
# gateway (lightning-wall-host serve), or nginx with ngx_wasm_module and nginx/nginx.conf
# (DEMO_PROXY=nginx; `make nginx` builds it) — the site through the wall on http://127.0.0.1:8080.
#
#   scripts/demo.sh                build, start, print what to open; Ctrl-C stops everything
#   scripts/demo.sh --run CMD…     build, start on a fresh data dir, run CMD, stop everything;
#                                  exits with CMD's status (`make demo-check`, `make browser-test`)
#
# DEMO_PROXY=envoy|gateway|nginx forces one (default: envoy if installed, else gateway; `make demo
# PROXY=nginx`). Logs: target/demo/logs/.
# DEMO_LISTEN sets the gateway's address (default 127.0.0.1:8080; the soak uses [::]:8080);
# the gateway writes its shared data's size to target/demo/logs/gateway-stats.json.
# DEMO_RELEASE=1 builds and runs release binaries (target/release), as an operator runs them:
# the soak does, since a debug sidecar spends several times the CPU per request.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUN=()
if [[ ${1:-} == --run ]]; then
  shift
  [[ $# -gt 0 ]] || { echo "demo: --run needs a command" >&2; exit 2; }
  RUN=("$@")
fi

profile=debug
[[ ${DEMO_RELEASE:-} == 1 ]] && profile=release
BIN=$ROOT/target/$profile
WASM=$ROOT/target/wasm/lightning_wall_filter.wasm
CONFIG=$ROOT/examples/demo/lightning-wall.yaml
LOGS=$ROOT/target/demo/logs
SITE=http://127.0.0.1:8080
PORTS=(8080 8081 8082 8083 3000)

proxy=${DEMO_PROXY:-}
if [[ -z $proxy ]]; then
  if command -v envoy >/dev/null 2>&1; then proxy=envoy; else proxy=gateway; fi
fi
case $proxy in
  envoy) PORTS+=(9901) ;;
  gateway | nginx) ;;
  *) echo "demo: DEMO_PROXY must be envoy, gateway or nginx, not '$proxy'" >&2; exit 2 ;;
esac

# Fail before building when a port is taken: the message names the port and what uses it.
busy=()
for port in "${PORTS[@]}"; do
  if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy+=("$port"); fi
done
if [[ ${#busy[@]} -gt 0 ]]; then
  echo "demo: port(s) ${busy[*]} on 127.0.0.1 already in use; the demo needs ${PORTS[*]}." >&2
  command -v ss >/dev/null 2>&1 && for port in "${busy[@]}"; do
    ss -Hltnp "sport = :$port" 2>/dev/null | sed 's/^/demo:   /' >&2 || true
  done
  echo "demo: stop what listens there (an earlier demo?) and try again." >&2
  exit 1
fi

echo "demo: building the filter, the sidecar, the gateway and the demo site…" >&2
make --no-print-directory "$WASM" >&2
cargo build --locked --quiet $([[ $profile == release ]] && echo --release) \
  --bin lightning-wall --bin lightning-wall-host --bin lightning-wall-demo-site >&2
if [[ $proxy == nginx ]]; then
  # Cached outside the clone: a few seconds once built (~9 min the first time).
  NGINX=$(scripts/build-nginx.sh)
  mkdir -p target/demo/nginx
fi

mkdir -p "$LOGS"
if [[ ${#RUN[@]} -gt 0 ]]; then
  # A fresh store and dev node for every check run, so runs never see each other's deposits.
  work=$(mktemp -d "${TMPDIR:-/tmp}/lightning-wall-demo.XXXXXX")
  sed "s|^data_dir:.*|data_dir: $work/data|" "$CONFIG" >"$work/lightning-wall.yaml"
  CONFIG=$work/lightning-wall.yaml
fi
if [[ -z ${LW_ADMIN_TOKEN:-} ]]; then
  LW_ADMIN_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
fi
export LW_ADMIN_TOKEN LW_DEMO_CONFIG=$CONFIG LW_DEMO_URL=$SITE LW_DEMO_BIN=$BIN LW_DEMO_PROXY=$proxy

pids=()
stop() {
  local status=$?
  trap - EXIT INT TERM
  if [[ ${#pids[@]} -gt 0 ]]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # Give them 5 s to finish in-flight requests, then make sure.
    for _ in $(seq 50); do
      kill -0 "${pids[@]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  [[ -n ${work:-} ]] && rm -rf "$work"
  exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # name, command…
  local name=$1
  shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  pids+=($!)
}

fail_start() {
  echo "demo: $1 did not come up; last lines of $LOGS/$2.log:" >&2
  tail -n 20 "$LOGS/$2.log" >&2 || true
  exit 1
}

wait_http() { # url, name, log
  for _ in $(seq 150); do
    if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  fail_start "$2" "$3"
}

start sidecar "$BIN/lightning-wall" serve --config "$CONFIG"
start site "$BIN/lightning-wall-demo-site" --listen 127.0.0.1:3000
wait_http http://127.0.0.1:8081/readyz "the sidecar" sidecar
wait_http http://127.0.0.1:3000/ "the demo site" site

if [[ $proxy == envoy ]]; then
  start envoy envoy -c envoy/envoy.yaml --log-level warn
elif [[ $proxy == nginx ]]; then
  # -p: the repository is the prefix nginx.conf's relative paths start from.
  start nginx "$NGINX" -p "$ROOT/" -c nginx/nginx.conf -e target/demo/logs/nginx-error.log
else
  start gateway "$BIN/lightning-wall-host" serve --wasm "$WASM" \
    --plugin-config '{"sidecar_cluster": "lightning_wall_sidecar", "wall_cluster": "lightning_wall_public"}' \
    --listen "${DEMO_LISTEN:-127.0.0.1:8080}" --upstream http://127.0.0.1:3000 \
    --stats-file "$LOGS/gateway-stats.json" \
    --route /.well-known/lightning-wall/=http://127.0.0.1:8082 \
    --cluster lightning_wall_sidecar=http://127.0.0.1:8081 \
    --cluster lightning_wall_public=http://127.0.0.1:8082 \
    --workers 2 --failure-policy fail-closed
fi
wait_http "$SITE/" "$proxy" "$proxy"
# The filter answers 503 on protected routes until its first bootstrap (about one tick), in each
# worker on its own: ten 402s in a row (new connections, which nginx spreads over its workers)
# before the demo counts as up, or a check may meet a worker still starting.
ready=0
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$SITE/.well-known/lightning-wall/wall.css" || true)
  [[ $code == 200 ]] && code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$SITE/members/" || true)
  if [[ $code == 402 ]]; then
    ready=$((ready + 1))
    [[ $ready -ge 10 ]] && break
  else
    ready=0
    sleep 0.2
  fi
done
[[ $ready -ge 10 ]] || fail_start "the wall (members/ answered $code, not 402)" "$proxy"
# nginx may hand all of those to one worker; the other bootstraps on its own first tick, within
# about a tick of the first (both start together): give it that tick.
[[ $proxy == nginx ]] && sleep 2

if [[ ${#RUN[@]} -gt 0 ]]; then
  set +e
  "${RUN[@]}"
  status=$?
  set -e
  exit "$status"
fi

cat <<EOF

  lightning-wall demo — DEVELOPMENT node: invoices are real BOLT11 on regtest, no real money.
  Proxy: $proxy.  Logs: target/demo/logs/.  Data: target/demo/data/.

  Open in a browser:
    $SITE/              free home page, links to everything
    $SITE/members/      members area behind a 1,000 sat refundable deposit
  API (pay 10 sats per token):
    curl -i $SITE/api/quote
  Pay any invoice the wall shows you (deposit or payment):
    target/debug/lightning-wall dev pay <invoice>
  Operator view (admin API):
    LW_ADMIN_TOKEN=$LW_ADMIN_TOKEN target/debug/lightning-wall admin --url http://127.0.0.1:8083 list

  Ctrl-C stops everything.
EOF

# Foreground until Ctrl-C, or until one of the processes dies (then stop the others).
set +e
wait -n "${pids[@]}"
status=$?
# Above 128: killed by a signal, i.e. Ctrl-C reached it too; otherwise it stopped by itself.
((status > 128)) && exit "$status"
echo "demo: a process exited ($status); stopping the others (see target/demo/logs/)." >&2
exit 1
