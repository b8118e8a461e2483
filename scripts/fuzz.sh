#!/usr/bin/env bash
# Run every cargo-fuzz target of fuzz/ for SECONDS each and print executions per target.
#
#   scripts/fuzz.sh SECONDS        (make fuzz FUZZ_SECONDS=…)
#
# Needs a nightly toolchain (libFuzzer + sanitizers); installs cargo-fuzz when missing.
# Committed seeds in fuzz/corpus/<target>/ are read only; what the fuzzer finds goes to
# fuzz/target/corpus/<target>/ (ignored by git), crashes to fuzz/artifacts/<target>/.
# Exits non-zero when any target crashes.
set -euo pipefail

seconds=${1:?usage: scripts/fuzz.sh SECONDS}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: a nightly toolchain is required: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

targets=$(cargo +nightly fuzz list)
failed=()
summary=()
for target in $targets; do
  work="fuzz/target/corpus/$target"
  mkdir -p "$work" "fuzz/corpus/$target"
  log=$(mktemp)
  echo "fuzz: $target for ${seconds}s" >&2
  # The first corpus directory receives new inputs; the committed seeds stay as they are.
  if cargo +nightly fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$target")
    tail -n 40 "$log" >&2
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  summary+=("$(printf '%-20s %-6s %12s executions  %8s/s' "$target" "$status" "${execs:-?}" "${per_second:-?}")")
  rm -f "$log"
done

echo "fuzz: ${seconds}s per target"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
