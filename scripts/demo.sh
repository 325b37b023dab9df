#!/usr/bin/env bash
# The main job: a simulated INSTAR camera and pipelines/demo.yaml reading it.
# Runs DEMO_SECONDS (default 30) or until Ctrl-C, then prints the summary.
# Prints the viewer's and dashboard's URLs (WEB_BIND, default 127.0.0.1:8080).
# When mosquitto is installed, the demo also starts its own broker, the
# simulated camera raises an alarm every 10 s, and pipelines/events.yaml
# makes clips from them under ./clips and publishes events over MQTT.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(swift build --show-bin-path)/camflow"
seconds="${DEMO_SECONDS:-30}"
out="$(mktemp)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -f "$out" "${mqtt_conf:-}"' EXIT
alarm_args=()
if command -v mosquitto >/dev/null; then
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  mqtt_conf="$(mktemp)"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$mqtt_conf"
  mosquitto -c "$mqtt_conf" 2>/dev/null &
  pids+=($!)
  mqtt="mqtt://127.0.0.1:$port"
  alarm_args=(--mqtt "$mqtt" --alarm-every 10s)
fi
"$bin" sim --port 0 "${alarm_args[@]}" >"$out" &
pids+=($!)
for _ in $(seq 100); do grep -q '^camera 1: ' "$out" && break; sleep 0.1; done
url="$(sed -n 's/^camera 1: //p' "$out")"
[ -n "$url" ] || { echo "the simulator did not start" >&2; exit 1; }
web="${WEB_BIND:-127.0.0.1:8080}"
echo "simulated camera at $url; running pipelines/demo.yaml for ${seconds}s (Ctrl-C stops earlier)" >&2
echo "viewer:    http://$web/viewer" >&2
echo "dashboard: http://$web/" >&2
echo "recordings: http://$web/recordings   HLS: http://$web/hls/camera/index.m3u8" >&2
zmq="${ZMQ_ENDPOINT:-tcp://127.0.0.1:5555}"
echo "ZeroMQ:    $zmq; subscribe with: .venv/bin/python -m camflow_client tail $zmq --stream camera" >&2
echo "           (frames to MP4: .venv/bin/python -m camflow_client save $zmq --stream camera --out camera.mp4 --seconds 10)" >&2
if [ -n "${mqtt:-}" ]; then
  mac="$(sed -n 's/^camera 1 mac: //p' "$out")"
  echo "alarms:    every 10s on $mqtt; clips go to ./clips (pipelines/events.yaml)" >&2
  echo "watch:     mosquitto_sub -p $port -t 'camflow/#' -t 'homeassistant/#' -v" >&2
  INSTAR_URL="$url" INSTAR_MAC="$mac" MQTT_URL="$mqtt" "$bin" run pipelines/events.yaml --for "${seconds}s" --quiet \
    --log-level warning >/dev/null &
  pids+=($!)
else
  echo "(install mosquitto to see camera alarms make clips: apt-get install mosquitto mosquitto-clients)" >&2
fi
CAMERA_URL="$url" WEB_BIND="$web" ZMQ_ENDPOINT="$zmq" "$bin" run pipelines/demo.yaml --for "${seconds}s"
if [ -n "${mqtt:-}" ]; then
  wait "${pids[-1]}" || true
  echo "clips made from the camera's alarms (clips/index.jsonl):" >&2
  tail -n 5 clips/index.jsonl >&2 2>/dev/null || echo "  none yet: the first alarm comes after 10s" >&2
fi
