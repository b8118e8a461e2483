# Sourced (not run) by the scripts that start a sidecar beside a proxy for one measurement or
# one check: bench-gateway.sh, bench-nginx.sh, nginx-full-shm.sh. What they share, once:
#   stack_init NAME       a temporary directory ($dir) whose processes ($pids) are stopped and
#                         which is removed on exit; NAME prefixes every message
#   stack_fail MESSAGE    says what failed and exits 1 (a script may define stack_on_fail to keep
#                         logs first)
#   wait_port PORT        waits up to 10 s for a listener on 127.0.0.1:PORT
#   sidecar_config INTERNAL PUBLIC MINT_RATE   writes $dir/lightning-wall.yaml: the dev node, a
#                         pay route `api` on /api/ (10 sat, 24 h) and a free route on /free
#   start_sidecar BINARY  `serve` on that config, from $dir (its data stays in $dir/data)
#   paid_credential INTERNAL   mints a challenge for `api` and pays it with the dev node: $auth
#                         is the header line that carries the credential
#   median                the median of the numbers on stdin
#   ratio_table ROUNDS SECONDS DESCRIPTION SET-UP…   the table of medians every bench prints
#                         from ${all[set-up]} (ratios to plain, noop and noop on the same request)

stack_init() {
  stack_name=$1
  dir=$(mktemp -d)
  pids=()
  trap stack_cleanup EXIT
}

stack_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}

stack_fail() {
  echo "$stack_name: $*" >&2
  if declare -F stack_on_fail >/dev/null; then stack_on_fail; fi
  exit 1
}

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  stack_fail "nothing listening on port $1"
}

sidecar_config() {
  cat >"$dir/lightning-wall.yaml" <<YAML
data_dir: ./data
node: { backend: dev }
listeners:
  internal: { bind: 127.0.0.1:$1 }
  public: { bind: 127.0.0.1:$2 }
limits:
  challenge_mint_rate: $3
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
}

start_sidecar() {
  (cd "$dir" && RUST_LOG=warn exec "$1" serve --config lightning-wall.yaml >"$dir/sidecar.log" 2>&1) &
  pids+=($!)
}

paid_credential() {
  local challenge macaroon invoice preimage
  challenge=$(curl -fsS -X POST "http://127.0.0.1:$1/v1/challenge" \
    -H 'content-type: application/json' -d '{"route_id": "api", "client_ip": "127.0.0.1"}') ||
    stack_fail "the sidecar minted no challenge"
  macaroon=$(json_field macaroon <<<"$challenge")
  invoice=$(json_field invoice <<<"$challenge")
  preimage=$(curl -fsS -X POST "http://127.0.0.1:$1/v1/dev/pay" \
    -H 'content-type: application/json' -d "{\"invoice\": \"$invoice\"}" | json_field preimage) ||
    stack_fail "the dev node did not pay the challenge"
  auth="authorization: L402 $macaroon:$preimage"
}

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

ratio_table() {
  local rounds=$1 seconds=$2 description=$3 s same
  shift 3
  declare -gA med
  for s in "$@"; do med[$s]=$(echo ${all[$s]} | median); done
  echo
  echo "| set-up | requests/s (median of $rounds x ${seconds} s, $description) | ratio to plain | ratio to noop | ratio to noop on the same request |"
  echo "|---|---:|---:|---:|---:|"
  for s in "$@"; do
    same=${med[noop]}
    case $s in noop_paid | wall_paid) same=${med[noop_paid]} ;; esac
    awk -v s="$s" -v r="${med[$s]}" -v p="${med[plain]}" -v n="${med[noop]}" -v m="$same" \
      'BEGIN { printf "| %s | %.0f | %.3f | %.3f | %.3f |\n", s, r, r / p, r / n, r / m }'
  done
}
