#!/usr/bin/env bash
# Instructions per request of the filter's paid hot path (or another scenario of
# filter/benches/paid_path.rs) under callgrind: repeatable on a loaded machine, where seconds
# are not.
#
#   scripts/callgrind-paid-path.sh <paid_path-binary> <requests> <paid|noop|first_seen> <out-file>
#
# LIGHTNING_WALL_WASM_DIR picks the .wasm (any commit's). LW_WASM_PERFMAP=1 (set here) makes
# wasmtime write /tmp/perf-<pid>.map, copied to <out-file>.map, naming the guest's functions
# when the .wasm keeps its name section (scripts/callgrind-attribute.py uses it).
# Prints the instructions counted between the binary's markers, and per request.
set -euo pipefail
bin=${1:?paid_path binary} n=${2:?requests} scenario=${3:?scenario} out=${4:?out file}
go=$(mktemp -u /tmp/lw-callgrind-go.XXXXXX)
log=$(mktemp /tmp/lw-callgrind-log.XXXXXX)
LW_GO_FILE=$go LW_WASM_PERFMAP=1 valgrind --tool=callgrind --instr-atstart=no \
  --zero-before='*paid_path::start_marker*' --dump-before='*paid_path::end_marker*' \
  --dump-instr=yes --compress-pos=no --compress-strings=no \
  --callgrind-out-file="$out" "$bin" "$n" "$scenario" >"$log" 2>&1 &
pid=$!
until grep -q '^ready' "$log"; do
  if ! kill -0 "$pid" 2>/dev/null; then cat "$log" >&2; exit 1; fi
  sleep 1
done
callgrind_control -i on "$pid" >/dev/null
touch "$go"
wait "$pid"
rm -f "$go"
[ -f "/tmp/perf-$pid.map" ] && mv "/tmp/perf-$pid.map" "$out.map"
# The dump at end_marker is <out>.1 (the one at exit, <out> itself, holds the rest).
ir=$(awk '/^summary:|^totals:/ {print $2; exit}' "$out.1")
echo "$scenario: $ir instructions for $n requests, $((ir / n)) per request ($out.1)"
rm -f "$log"
