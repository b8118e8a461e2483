#!/usr/bin/env bash
# Run cargo-fuzz targets of fuzz/ for SECONDS each and print a results row per target.
#
#   scripts/fuzz.sh SECONDS [TARGET...]   (make fuzz FUZZ_SECONDS=…; make fuzz-smoke)
#
#   FUZZ_RUNS=N    also stop a target after N executions (e.g. 10000000)
#   FUZZ_NICE=N    niceness of the fuzzers (default 10: the machine is shared with builds)
#   FUZZ_SANITIZER=address|none   (default address) `none` runs 2-3x more executions per
#                  second; fit for long runs over code that is safe Rust (l402 and the filter
#                  forbid `unsafe`), where AddressSanitizer has nothing of ours to catch
#
# Needs a nightly toolchain (libFuzzer + AddressSanitizer); installs cargo-fuzz when missing.
# Committed seeds in fuzz/corpus/<target>/ are read only; what the fuzzer finds goes to
# fuzz/target/corpus/<target>/ (ignored by git), crashes to fuzz/artifacts/<target>/.
# The checks each target runs are in fuzz-checks/ (also replayed over the committed corpus by
# `make test`). Prints one markdown row per target for fuzz/RESULTS.md. Exits non-zero when any
# target crashes.
set -euo pipefail

seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: a nightly toolchain is required: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi
runs=()
[ -n "${FUZZ_RUNS:-}" ] && runs=("-runs=$FUZZ_RUNS")
nice_n=${FUZZ_NICE:-10}
sanitizer=(-s "${FUZZ_SANITIZER:-address}")
# Build every target first, so the timed runs below measure fuzzing, not compiling.
nice -n "$nice_n" cargo +nightly fuzz build "${sanitizer[@]}" >&2
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"${1:-0}"; }
failed=()
rows=()
for target in "${targets[@]}"; do
  work="target/corpus/$target"
  mkdir -p "$work" "corpus/$target"
  log="target/fuzz-$target.log"
  echo "fuzz: $target for ${seconds}s${FUZZ_RUNS:+ or $FUZZ_RUNS executions}" >&2
  start=$(date +%s)
  # The first corpus directory receives new inputs; the committed seeds stay as they are.
  if nice -n "$nice_n" cargo +nightly fuzz run "${sanitizer[@]}" "$target" "$work" "corpus/$target" -- \
      -max_total_time="$seconds" "${runs[@]}" -print_final_stats=1 >"$log" 2>&1; then
    crashes=0
  elif grep -q 'libFuzzer: run interrupted' "$log"; then
    crashes="0 (stopped by hand)"  # SIGINT: libFuzzer prints its stats and exits 72
  else
    crashes=1
    failed+=("$target")
    tail -n 40 "$log" >&2
  fi
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  rows+=("$(printf '| %s | `%s` | %s s | %s | %s | %s |' "$(date -u +%F)" "$target" "$took" \
    "$(commas "$execs")" "$(commas "$per_second")" "$crashes")")
done

echo "| date | target | time | executions | exec/s | crashes |"
echo "|---|---|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
