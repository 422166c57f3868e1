#!/usr/bin/env bash
# Prints the median of every criterion benchmark under target/criterion, in nanoseconds.
set -euo pipefail
root=${1:-target/criterion}
printf '%-34s %14s\n' "benchmark" "median"
find "$root" -path '*/new/estimates.json' | sort | while read -r f; do
  id=${f#"$root"/}
  id=${id%/new/estimates.json}
  python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["median"]["point_estimate"]
unit = "ns" if m < 1e3 else ("us" if m < 1e6 else "ms")
div = {"ns": 1, "us": 1e3, "ms": 1e6}[unit]
print("%-34s %11.1f %s" % (sys.argv[2], m / div, unit))
' "$f" "$id"
done
