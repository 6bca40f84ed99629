#!/usr/bin/env bash
# Server memory while recording: N paths (default 10), each an ffmpeg publisher of a
# looped 2 Mbit/s 720p30 H.264+AAC clip over RTSP, recorded as fMP4 in 10-minute
# segments, for SECONDS (default 1800). RSS and CPU time of the server are sampled
# every 10 s into OUT/rss.csv; OUT/summary.txt has the growth per hour (least squares
# over the run after its first minute) and the bytes written per path per second.
# RECORD=no runs the same without recording: the baseline to compare against.
#   bench/record_rss.sh [SECONDS] [PATHS] [OUT]
set -euo pipefail
secs=${1:-1800}
paths=${2:-10}
out=$(realpath -m "${3:-target/bench/record-rss}")
bin=${BIN:-target/release/mediarouter}
mkdir -p "$out"
rm -rf "$out/rec" && mkdir -p "$out/rec"
clip=target/bench/clip-720p-2m.mp4
if [ ! -f "$clip" ]; then
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 -c:v libx264 -preset veryfast \
    -b:v 2M -maxrate 2M -bufsize 2M -g 60 -pix_fmt yuv420p -c:a aac -b:a 96k "$clip"
fi
port=$((20000 + RANDOM % 20000))
cat > "$out/mediarouter.yml" <<YML
logLevel: info
rtspAddress: 127.0.0.1:$port
rtpAddress: 127.0.0.1:0
rtcpAddress: 127.0.0.1:0
rtmp: no
hls: no
rtspTransports: [tcp]
pathDefaults:
  record: ${RECORD:-yes}
  recordPath: $out/rec/%path/%Y-%m-%d_%H-%M-%S-%f
  recordSegmentDuration: 10m
  recordDeleteAfter: 0s
paths:
  all_others:
YML
"$bin" "$out/mediarouter.yml" > "$out/server.log" 2>&1 &
srv=$!
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; kill $srv 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do grep -q "RTSP listener opened" "$out/server.log" && break; sleep 0.2; done
for i in $(seq "$paths"); do
  ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$clip" -c copy -f rtsp \
    -rtsp_transport tcp "rtsp://127.0.0.1:$port/cam$i" < /dev/null &
  pids+=($!)
done
tick=$(getconf CLK_TCK)
echo "seconds,rss_kib,cpu_s,bytes_on_disk" > "$out/rss.csv"
start=$(date +%s)
while :; do
  now=$(( $(date +%s) - start ))
  rss=$(awk '/VmRSS/ {print $2}' /proc/$srv/status)
  cpu=$(awk -v t="$tick" '{printf "%.2f", ($14 + $15) / t}' /proc/$srv/stat)
  bytes=$(du -sb "$out/rec" | cut -f1)
  echo "$now,$rss,$cpu,$bytes" >> "$out/rss.csv"
  [ "$now" -ge "$secs" ] && break
  sleep 10
done
python3 - "$out/rss.csv" "$paths" > "$out/summary.txt" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]))]
paths = int(sys.argv[2])
pts = [(int(r["seconds"]), int(r["rss_kib"])) for r in rows if int(r["seconds"]) >= 60]
n = len(pts)
mx = sum(x for x, _ in pts) / n
my = sum(y for _, y in pts) / n
slope = sum((x - mx) * (y - my) for x, y in pts) / max(1e-9, sum((x - mx) ** 2 for x, _ in pts))
last = rows[-1]
dur = int(last["seconds"])
print(f"duration_s={dur} paths={paths}")
print(f"rss_kib first_min_end={pts[0][1]} last={pts[-1][1]} max={max(y for _, y in pts)}")
print(f"rss_growth_kib_per_hour={slope * 3600:.0f}")
print(f"cpu_s={float(last['cpu_s']):.1f} cpu_share={float(last['cpu_s']) / dur:.3f}")
print(f"write_bytes_per_path_per_s={int(last['bytes_on_disk']) / dur / paths:.0f}")
PY
cat "$out/summary.txt"
