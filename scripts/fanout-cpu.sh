#!/usr/bin/env bash
# Server CPU for N readers of one ~2 Mbit/s stream over one protocol, against a
# publisher-only baseline measured in the same run. Loopback only; every process is
# bounded in time. Readers are ffmpeg (-c copy -f null).
# usage: scripts/fanout-cpu.sh [rtsp|rtmp|flv] [readers=20] [seconds=20]
set -euo pipefail
PROTO=${1:-rtsp}
N=${2:-20}
SECS=${3:-20}
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 -c:v libx264 -preset ultrafast \
  -g 30 -b:v 2M -maxrate 2M -bufsize 1M -pix_fmt yuv420p -c:a aac -b:a 96k "$work/clip.mp4"

base=$((20000 + RANDOM % 20000))
cat > "$work/cfg.yml" <<CFG
logLevel: warn
rtspAddress: 127.0.0.1:$base
rtpAddress: 127.0.0.1:0
rtcpAddress: 127.0.0.1:0
rtmpAddress: 127.0.0.1:$((base + 1))
hlsAddress: 127.0.0.1:$((base + 2))
paths:
  all_others:
CFG
./target/release/mediarouter "$work/cfg.yml" &
pid=$!
until (exec 3<>/dev/tcp/127.0.0.1/$base) 2>/dev/null; do sleep 0.1; done
case "$PROTO" in
  rtsp) url=rtsp://127.0.0.1:$base/bench; in=(-rtsp_transport tcp -i "$url") ;;
  rtmp) url=rtmp://127.0.0.1:$((base + 1))/live/bench; in=(-i "$url") ;;
  flv) url=http://127.0.0.1:$((base + 2))/live/bench.flv; in=(-i "$url") ;;
  *) echo "unknown protocol $PROTO" >&2; exit 2 ;;
esac
path=${url#*//*/}; path=${path%.flv}

cpu() { awk '{print $14 + $15}' /proc/$pid/stat; }
tck=$(getconf CLK_TCK)

timeout $((3 * SECS + 30)) ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$work/clip.mp4" \
  -c copy -f rtsp -rtsp_transport tcp "rtsp://127.0.0.1:$base/$path" &
sleep 3
a=$(cpu); sleep "$SECS"; b=$(cpu)
idle=$(echo "scale=3; ($b - $a) / $tck" | bc)

for i in $(seq "$N"); do
  timeout $((SECS + 20)) ffmpeg -hide_banner -loglevel error "${in[@]}" -c copy -f null - &
done
sleep 3
a=$(cpu); sleep "$SECS"; b=$(cpu)
with=$(echo "scale=3; ($b - $a) / $tck" | bc)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "$PROTO: publisher only ${idle}s CPU in ${SECS}s; with $N readers ${with}s (RSS ${rss} kB)"
echo "$PROTO: $(echo "scale=6; ($with - $idle) / ($N * $SECS)" | bc)s server CPU per reader-second"
