#!/usr/bin/env bash
# Regenerates the committed fragmented-MP4 fixtures with ffmpeg, from
# synthetic test patterns: small files that cover what the parser must get
# right. Run from anywhere; writes Tests/Fixtures/.
set -euo pipefail
cd "$(dirname "$0")/../Tests/Fixtures"
command -v ffmpeg >/dev/null || { echo "ffmpeg is needed: apt-get install -y ffmpeg" >&2; exit 1; }

common=(-hide_banner -loglevel error -y -fflags +bitexact -flags:v +bitexact -flags:a +bitexact)
out=(-map_metadata -1)
per_gop=(-movflags frag_keyframe+empty_moov+default_base_moof -f mp4)
video() { echo "testsrc2=size=$1:rate=${2:-25}"; }
tone=(-f lavfi -i "sine=frequency=440:sample_rate=48000")

# What the camera sends: H.264 main with AAC audio, one fragment per 2 s GOP.
ffmpeg "${common[@]}" -f lavfi -i "$(video 640x360)" "${tone[@]}" -t 6 \
  -c:v libx264 -profile:v main -level 5.1 -preset veryfast -g 50 -keyint_min 50 -sc_threshold 0 -b:v 200k \
  -c:a aac -b:a 48k "${out[@]}" "${per_gop[@]}" h264-main-aac.mp4

# H.264 baseline, video only.
ffmpeg "${common[@]}" -f lavfi -i "$(video 320x240)" -t 3 \
  -c:v libx264 -profile:v baseline -preset veryfast -g 25 -sc_threshold 0 -b:v 100k \
  "${out[@]}" "${per_gop[@]}" h264-baseline.mp4

# H.264 high with B-frames: pts differs from dts (composition offsets).
ffmpeg "${common[@]}" -f lavfi -i "$(video 320x240)" -t 3 \
  -c:v libx264 -profile:v high -preset veryfast -bf 2 -g 25 -sc_threshold 0 -b:v 100k \
  "${out[@]}" "${per_gop[@]}" h264-high-bframes.mp4

# H.265 tagged hev1, as the camera's H.265 mode.
ffmpeg "${common[@]}" -f lavfi -i "$(video 320x240)" -t 3 \
  -c:v libx265 -x265-params "log-level=error:keyint=25:min-keyint=25:scenecut=0:bframes=0" -tag:v hev1 -b:v 100k \
  "${out[@]}" "${per_gop[@]}" h265.mp4

# One fragment per frame (low-latency streaming), with audio.
ffmpeg "${common[@]}" -f lavfi -i "$(video 320x240)" "${tone[@]}" -t 2 \
  -c:v libx264 -profile:v main -preset veryfast -g 25 -sc_threshold 0 -b:v 100k -c:a aac -b:a 32k \
  "${out[@]}" -movflags frag_every_frame+empty_moov+default_base_moof -f mp4 h264-fragment-per-frame.mp4

# An odd picture size (4:4:4 allows odd dimensions).
ffmpeg "${common[@]}" -f lavfi -i "$(video 334x188),scale=333:187" -t 2 \
  -c:v libx264 -pix_fmt yuv444p -preset veryfast -g 25 -sc_threshold 0 -b:v 100k \
  "${out[@]}" "${per_gop[@]}" h264-odd-size.mp4

# A keyframe interval that changes: keyframes at 0, 1, 3, 3.5 and 4 s.
ffmpeg "${common[@]}" -f lavfi -i "$(video 320x240)" -t 5 \
  -c:v libx264 -profile:v main -preset veryfast -g 1000 -sc_threshold 0 -force_key_frames 0,1,3,3.5,4 -b:v 100k \
  "${out[@]}" "${per_gop[@]}" h264-gop-change.mp4

ls -l

# The simulator's built-in media is the camera-like clip (git stores it once).
cp h264-main-aac.mp4 ../../Sources/InstarSimulator/Resources/camera.mp4
