#!/usr/bin/env bash
# `make bench-leave`: how long an honest visitor waits for the refund. LEAVE_VISITORS (default
# 200) visitors each take a deposit on the demo (402, `dev pay`, status), read a page, leave,
# and the time from sending the leave to the dev node reporting the hold invoice CANCELED is
# measured (polling every 10 ms). Run by `scripts/demo.sh --run scripts/bench-leave.sh` (the
# Makefile target), which starts the sidecar, demo site and proxy on 127.0.0.1:8080. Prints the
# percentiles as a markdown table. The leave grace (deposits.leave_grace, 1 s by default) is
# part of what is measured: that is the price of "a decided forfeit wins".
set -euo pipefail
SITE=${LW_DEMO_URL:?run through scripts/demo.sh --run}
LW=${LW_DEMO_BIN:?}/lightning-wall
INTERNAL=http://127.0.0.1:8081
WALL=$SITE/.well-known/lightning-wall
VISITORS=${LEAVE_VISITORS:-200}
PARALLEL=${LEAVE_PARALLEL:-4}
export SITE LW INTERNAL WALL

visit() {
  local ch mac hash invoice cred t0 t1 state
  for _ in $(seq 120); do # the demo's mint limit is 120 a minute per client IP: wait for room
    ch=$(curl -sS --max-time 10 -H 'Accept: application/json' "$SITE/members/")
    invoice=$(jq -r '.invoice // empty' <<<"$ch")
    [[ -n $invoice ]] && break
    sleep 1
  done
  [[ -n $invoice ]] || { echo "no challenge: $ch" >&2; return 1; }
  mac=$(jq -r .macaroon <<<"$ch")
  hash=$(jq -r .payment_hash <<<"$ch")
  "$LW" dev pay "$invoice" >/dev/null
  cred=$(curl -sS --max-time 15 -H "Authorization: L402 $mac:" "$WALL/deposit?wait=10" | jq -r .credential)
  curl -sS -o /dev/null --max-time 10 -H "Authorization: L402 $cred" "$SITE/members/"
  t0=$(date +%s%N)
  curl -sS -o /dev/null --max-time 10 -X POST -H "Authorization: L402 $cred" "$WALL/leave"
  for _ in $(seq 1000); do
    state=$(curl -sS --max-time 5 "$INTERNAL/v1/dev/invoices/$hash")
    [[ $state == *'"CANCELED"'* ]] && { state=CANCELED; break; }
    sleep 0.01
  done
  t1=$(date +%s%N)
  [[ $state == CANCELED ]] || { echo "never cancelled: $hash ($state)" >&2; return 1; }
  echo $(((t1 - t0) / 1000000))
}
export -f visit

started=$(date +%s)
seq "$VISITORS" | xargs -P "$PARALLEL" -I{} bash -c visit >"${TMPDIR:-/tmp}/bench-leave.$$"
sort -n "${TMPDIR:-/tmp}/bench-leave.$$" | python3 -c '
import sys
ms = [int(l) for l in sys.stdin if l.strip()]
def p(q): return ms[min(len(ms) - 1, int(q * len(ms)))]
print("| visitors | p50 | p90 | p99 | max |")
print("|---|---|---|---|---|")
print(f"| {len(ms)} | {p(0.50)} ms | {p(0.90)} ms | {p(0.99)} ms | {ms[-1]} ms |")
'
rm -f "${TMPDIR:-/tmp}/bench-leave.$$"
echo "bench-leave: $VISITORS visitors in $(($(date +%s) - started)) s, $PARALLEL at a time" >&2
