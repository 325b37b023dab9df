#!/usr/bin/env bash
# Regenerates the committed fMP4 fixtures with ffmpeg. Deterministic inputs
# (lavfi test patterns), so a rerun gives streams with the same structure.
set -euo pipefail
cd "$(dirname "$0")/../Tests/Fixtures"
command -v ffmpeg >/dev/null || { echo "ffmpeg is needed: apt-get install -y ffmpeg" >&2; exit 1; }

common=(-hide_banner -loglevel error -y -fflags +bitexact -flags:v +bitexact -flags:a +bitexact)
frag=(-movflags frag_keyframe+empty_moov+default_base_moof -f mp4)

# H.264 main profile with AAC audio, one fragment per 2 s GOP: what the camera sends.
ffmpeg "${common[@]}" \
  -f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 6 \
  -c:v libx264 -profile:v main -level 5.1 -preset veryfast -g 50 -keyint_min 50 -sc_threshold 0 -b:v 200k \
  -c:a aac -b:a 48k "${frag[@]}" h264-main-aac.mp4

ls -l
