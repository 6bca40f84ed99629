#!/usr/bin/env bash
# CPU per SRT session (issue 25): one ffmpeg SRT publisher (720p30 H.264 + AAC,
# 2.2 Mbit/s), then N ffmpeg readers over SRT, then N over RTMP, each for a window;
# prints the server's CPU µs per reader-second for both, and the publisher's own cost.
# Release build, loopback only. Usage: scripts/srt-bench.sh [readers] [window seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
readers=${1:-20}
window=${2:-15}
cargo build --release --locked --bin mediarouter >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
clip="$work/clip.ts"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 -c:v libx264 -preset veryfast \
  -g 30 -pix_fmt yuv420p -b:v 2M -maxrate 2.2M -bufsize 2M -c:a aac -b:a 96k -f mpegts "$clip"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rtmp=$(free_port); srt=$(free_port)
cat > "$work/cfg.yml" <<YML
logLevel: warn
rtsp: no
hls: no
webrtc: no
rtmpAddress: 127.0.0.1:$rtmp
srtAddress: 127.0.0.1:$srt
paths:
  all_others:
YML
target/release/mediarouter "$work/cfg.yml" & server=$!
sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$clip" -c copy -f mpegts \
  "srt://127.0.0.1:$srt?streamid=publish:cam&pkt_size=1316" & publisher=$!
sleep 3
measure() { # label, then the reader URL
  local label=$1 url=$2 pids=() t0 t1
  t0=$(ticks)
  sleep "$window"
  t1=$(ticks)
  local idle=$(( t1 - t0 ))
  for _ in $(seq "$readers"); do
    ffmpeg -hide_banner -loglevel error -i "$url" -c copy -f null - & pids+=($!)
  done
  sleep 3
  t0=$(ticks)
  sleep "$window"
  t1=$(ticks)
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  local busy=$(( t1 - t0 ))
  python3 -c "
hz=$hz; w=$window; n=$readers; busy=$busy; idle=$idle
per=(busy-idle)/hz/w/n*1e6
print(f'$label: {n} readers, server CPU {busy/hz/w*100:.1f} % (publisher alone {idle/hz/w*100:.1f} %), {per:.0f} µs per reader-second')
"
  sleep 2
}
measure srt "srt://127.0.0.1:$srt?streamid=read:cam"
measure rtmp "rtmp://127.0.0.1:$rtmp/cam"
kill $publisher $server
