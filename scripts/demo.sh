#!/usr/bin/env bash
# The main job: a simulated INSTAR camera and pipelines/demo.yaml reading it.
# Runs DEMO_SECONDS (default 30) or until Ctrl-C, then prints the summary.
# Prints the viewer's and dashboard's URLs (WEB_BIND, default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(swift build --show-bin-path)/camflow"
seconds="${DEMO_SECONDS:-30}"
out="$(mktemp)"
"$bin" sim --port 0 >"$out" &
sim=$!
trap 'kill $sim 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q '^camera 1: ' "$out" && break; sleep 0.1; done
url="$(sed -n 's/^camera 1: //p' "$out")"
[ -n "$url" ] || { echo "the simulator did not start" >&2; exit 1; }
web="${WEB_BIND:-127.0.0.1:8080}"
echo "simulated camera at $url; running pipelines/demo.yaml for ${seconds}s (Ctrl-C stops earlier)" >&2
echo "viewer:    http://$web/viewer" >&2
echo "dashboard: http://$web/" >&2
CAMERA_URL="$url" WEB_BIND="$web" "$bin" run pipelines/demo.yaml --for "${seconds}s"
