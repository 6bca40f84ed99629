#!/usr/bin/env bash
# CPU cost of the transcode stage against the ffmpeg CLI doing the same work in the
# same run: a 1080p30 H.264 clip to 720p H.264 at 1500k, preset fast. The stage runs
# x264 with tune zerolatency (live: no lookahead, no B-frames), so ffmpeg is measured
# both as the issue names it and with the same tune. Needs FFmpeg's dev packages
# (README, Transcoding). Usage: scripts/transcode-bench.sh [SECONDS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
runs="${2:-3}"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
cargo build --release --quiet --features transcode --bin mediarouter-transcode-bench
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
clip="$work/in.ts"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=30 -t "$secs" \
  -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -b:v 4000k -f mpegts "$clip"
# CPU seconds (user + system) of a command.
cpu() { /usr/bin/env time -f '%U %S' -o "$work/t" "$@" >/dev/null 2>&1; awk '{print $1 + $2}' "$work/t"; }
ours() {
  ./target/release/mediarouter-transcode-bench "$clip" \
    --conf '{hwaccel: none, video: {height: 720, bitrate: 1500k, preset: fast}, fallback: software}'
}
ffmpeg_as_named() {
  ffmpeg -hide_banner -loglevel error -y -i "$clip" -an -vf scale=-2:720 -c:v libx264 -preset fast -b:v 1500k -f null -
}
ffmpeg_zerolatency() {
  ffmpeg -hide_banner -loglevel error -y -i "$clip" -an -vf scale=-2:720 -c:v libx264 -preset fast -tune zerolatency -b:v 1500k -f null -
}
echo "1080p30 → 720p, ${secs} s clip, ${runs} runs each, CPU seconds (user + system):"
for i in $(seq "$runs"); do
  a=$(cpu bash -c "$(declare -f ours); clip=$clip; ours")
  b=$(cpu bash -c "$(declare -f ffmpeg_as_named); clip=$clip; ffmpeg_as_named")
  c=$(cpu bash -c "$(declare -f ffmpeg_zerolatency); clip=$clip; ffmpeg_zerolatency")
  awk -v a="$a" -v b="$b" -v c="$c" -v i="$i" 'BEGIN {
    printf "run %d: stage %.2f, ffmpeg %.2f (ratio %.2f), ffmpeg -tune zerolatency %.2f (ratio %.2f)\n", i, a, b, a / b, c, a / c }'
done
ours | sed 's/^/last stage run: /'
