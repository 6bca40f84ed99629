#!/usr/bin/env bash
# Glass-to-glass latency per HLS variant: a release mediarouter on loopback, ffmpeg
# publishing a 720p30 H.264+AAC clip (1 s GOP) over RTSP in real time, and the player
# page in headless Chromium (tests/browser/hls_latency.mjs) measuring wall clock minus
# the program date time of the frame on screen. Needs what .ci/run installs.
# Usage: scripts/hls-latency.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
cargo build --release --quiet
(cd tests/browser && [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error)
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
clip="$work/clip.mp4"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 30 -c:v libx264 -preset veryfast \
  -tune zerolatency -g 30 -pix_fmt yuv420p -b:v 2M -c:a aac -b:a 96k "$clip"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for variant in lowLatency fmp4 mpegts; do
  rtsp=$(free_port); http=$(free_port); rtmp=$(free_port)
  cat > "$work/cfg.yml" <<YML
logLevel: warn
rtspAddress: 127.0.0.1:$rtsp
rtspTransports: [tcp]
rtmpAddress: 127.0.0.1:$rtmp
hlsAddress: 127.0.0.1:$http
hlsVariant: $variant
hlsSegmentDuration: 1s
hlsPartDuration: 200ms
paths:
  all_others:
YML
  target/release/mediarouter "$work/cfg.yml" & server=$!
  for _ in $(seq 50); do (: > /dev/tcp/127.0.0.1/$rtsp) 2>/dev/null && break; sleep 0.1; done
  ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$clip" -c copy -f rtsp \
    -rtsp_transport tcp "rtsp://127.0.0.1:$rtsp/cam" & publisher=$!
  result=$(node tests/browser/hls_latency.mjs "http://127.0.0.1:$http/cam/" "$secs" "${WARMUP:-10}" || true)
  echo "$variant $result"
  kill $publisher $server 2>/dev/null || true
  wait $publisher $server 2>/dev/null || true
done
