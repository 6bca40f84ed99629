#!/usr/bin/env bash
# Server CPU for N RTSP/TCP readers of one ~2 Mbit/s stream, against a publisher-only
# baseline measured in the same run. Loopback only; every process is bounded in time.
# usage: scripts/rtsp-fanout-cpu.sh [readers=20] [seconds=20]
set -euo pipefail
N=${1:-20}
SECS=${2:-20}
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 -c:v libx264 -preset ultrafast \
  -g 30 -b:v 2M -maxrate 2M -bufsize 1M -pix_fmt yuv420p -c:a aac -b:a 96k "$work/clip.mp4"

port=$((20000 + RANDOM % 20000))
cat > "$work/cfg.yml" <<CFG
logLevel: warn
rtspAddress: 127.0.0.1:$port
rtpAddress: 127.0.0.1:0
rtcpAddress: 127.0.0.1:0
hls: no
rtmp: no
paths:
  all_others:
CFG
./target/release/mediarouter "$work/cfg.yml" &
pid=$!
until (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.1; done
url=rtsp://127.0.0.1:$port/bench

cpu() { awk '{print $14 + $15}' /proc/$pid/stat; }
tck=$(getconf CLK_TCK)

timeout $((3 * SECS + 30)) ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$work/clip.mp4" \
  -c copy -f rtsp -rtsp_transport tcp "$url" &
sleep 3
a=$(cpu); sleep "$SECS"; b=$(cpu)
base=$(echo "scale=3; ($b - $a) / $tck" | bc)

for i in $(seq "$N"); do
  timeout $((SECS + 20)) ffmpeg -hide_banner -loglevel error -rtsp_transport tcp -i "$url" -c copy -f null - &
done
sleep 3
a=$(cpu); sleep "$SECS"; b=$(cpu)
with=$(echo "scale=3; ($b - $a) / $tck" | bc)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "publisher only: ${base}s CPU in ${SECS}s"
echo "publisher + $N TCP readers: ${with}s CPU in ${SECS}s (RSS ${rss} kB)"
echo "per reader-second: $(echo "scale=6; ($with - $base) / ($N * $SECS)" | bc)s CPU; ratio with/without readers: $(echo "scale=2; $with / $base" | bc)"
