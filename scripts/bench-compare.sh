#!/usr/bin/env bash
# Runs two builds of the engine benchmark side by side: alternately, ROUNDS times each, and
# prints per case the median of the runs' medians (min-max) for both and their ratio.
#   scripts/bench-compare.sh BEFORE_BENCH_BINARY AFTER_BENCH_BINARY [FILTER]
# Build each with `cargo bench -p warden-engine --bench decide --no-run` (the old one in a git
# worktree with its own CARGO_TARGET_DIR); FILTER selects cases (default `decide/`).
set -euo pipefail
before=${1:?usage: bench-compare.sh BEFORE AFTER [FILTER]}
after=${2:?usage: bench-compare.sh BEFORE AFTER [FILTER]}
filter=${3:-decide/}
rounds=${ROUNDS:-3}
out=$(mktemp -d)
for round in $(seq "$rounds"); do
  for which in before after; do
    bin=$before
    [ "$which" = after ] && bin=$after
    CRITERION_HOME="$out/$which-$round" "$bin" --bench "$filter" \
      --measurement-time 2 --warm-up-time 0.5 >/dev/null 2>&1
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, pathlib, statistics, sys
out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def medians(which):
    cases = {}
    for r in range(1, rounds + 1):
        for f in (out / f"{which}-{r}").rglob("new/estimates.json"):
            case = str(f.parent.parent.relative_to(out / f"{which}-{r}"))
            cases.setdefault(case, []).append(json.loads(f.read_text())["median"]["point_estimate"])
    return cases
b, a = medians("before"), medians("after")
print("| case | before (ns) | after (ns) | after / before |")
print("|---|---|---|---|")
for case in sorted(set(b) & set(a)):
    mb, ma = statistics.median(b[case]), statistics.median(a[case])
    print(f"| {case} | {mb:.1f} ({min(b[case]):.1f}-{max(b[case]):.1f}) | {ma:.1f} ({min(a[case]):.1f}-{max(a[case]):.1f}) | {ma / mb:.2f} |")
PY
rm -rf "$out"
