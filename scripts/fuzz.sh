#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for SECONDS each over their committed corpus, and
# prints one line per target: executions, corpus entries, coverage. A target that crashes is
# reported (the input is in fuzz/artifacts/<target>/), the others still run, and the script
# exits non-zero.
#   scripts/fuzz.sh SECONDS [TARGET...]     make fuzz (600 s each), make test (a smoke run)
# JOBS=2 runs two targets at a time. SCRATCH=1 leaves the committed corpus as it is (new
# entries go to a temporary directory): what `make test` does.
set -euo pipefail
seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(authority server_name bundle decide compiled)
jobs=${JOBS:-1}
cd "$(dirname "$0")/../fuzz"
# Sanitizer none: the fuzzed crates forbid unsafe code, so AddressSanitizer has nothing of
# ours to check and would only halve the executions. Debug assertions on: an overflow panics.
flags=(--sanitizer none --debug-assertions)
cargo +nightly fuzz build "${flags[@]}" 2>&1 | grep -vE "^ *(Compiling|Finished)" >&2 || true
dict() { case $1 in bundle) echo dict/bundle.dict ;; *) echo dict/hosts.dict ;; esac; }
run() {
  local t=$1 log
  log=$(mktemp)
  mkdir -p "corpus/$t"
  local dirs=("corpus/$t") scratch=""
  if [ "${SCRATCH:-0}" = 1 ]; then
    scratch=$(mktemp -d)
    dirs=("$scratch" "corpus/$t")
  fi
  if ! cargo +nightly fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- \
      -dict="$(dict "$t")" -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    grep -E "panicked|ERROR|artifact" "$log" | head -20 >&2
    echo "fuzz $t: FAILED (full log: $log)" >&2
    return 1
  fi
  local execs corpus cov
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  cov=$(grep -oE 'DONE +cov: [0-9]+' "$log" | awk '{print $3}')
  corpus=$(grep -oE 'DONE .* corp: [0-9]+' "$log" | grep -oE '[0-9]+$')
  printf 'fuzz %-12s %4s s  %12s executions  %6s corpus entries  cov %s\n' \
    "$t" "$seconds" "$execs" "$corpus" "$cov"
  rm -f "$log"
  [ -z "$scratch" ] || rm -rf "$scratch"
}
pids=()
status=0
for t in "${targets[@]}"; do
  run "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
