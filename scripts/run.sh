#!/usr/bin/env bash
# `make run`: a local Envoy with the Warden filter and the example manifests, kept running;
# every change under manifests/examples is rebuilt and applied live (ECDS). Ctrl-C stops both.
set -euo pipefail
builder=$1
envoy=$2
manifests=${3:-manifests/examples}
state=.tools/run
mkdir -p "$state"
"$builder" build "$manifests" -f "$state/bundle.json"
"$builder" render envoy --bundle "$state/bundle.json" --ecds "$PWD/$state/ecds.json" \
  --listen 127.0.0.1:15001 --admin 127.0.0.1:15000 -f "$state/envoy.json"
"$envoy" -c "$state/envoy.json" --concurrency 1 --log-path "$state/envoy.log" &
envoy_pid=$!
trap 'kill $envoy_pid 2>/dev/null; wait $envoy_pid 2>/dev/null' EXIT
cat <<TXT
Envoy runs with the Warden filter (log: $state/envoy.log; admin: http://127.0.0.1:15000).
Try:  curl -i -H 'Host: evil.example' http://127.0.0.1:15001/
      curl -s http://127.0.0.1:15000/stats/prometheus | grep warden_
Edit the manifests in $manifests: each change is rebuilt and applied live.
TXT
"$builder" watch "$manifests" --ecds "$PWD/$state/ecds.json" --admin 127.0.0.1:15000
