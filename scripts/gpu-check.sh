#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: what the transcode stage finds (a CUDA device and
# NVDEC, NVENC) and its 1080p → 720p throughput on the GPU path and in software, from
# the same clip in the same run. An H100 is expected to decode and scale on the GPU
# and, having no NVENC, to encode with libx264. CI doesn't run this (no GPU there).
#
# Needs the NVIDIA driver, and either cargo with FFmpeg's dev packages and libclang
# (README, Transcoding) or a prebuilt bench binary. Usage:
#   scripts/gpu-check.sh [SECONDS]
# Environment: BENCH=path/to/mediarouter-transcode-bench skips the build; CLIP=file.ts
# (1080p H.264 in MPEG-TS) skips making the clip with ffmpeg; REPEAT=N plays it N times.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
repeat="${REPEAT:-1}"
echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
echo "== driver libraries FFmpeg loads at run time (CUDA, NVDEC, NVENC)"
for l in libcuda.so.1 libnvcuvid.so.1 libnvidia-encode.so.1; do
  if ldconfig -p | grep -q "$l"; then echo "$l: found"; else echo "$l: missing"; fi
done
bench_bin="${BENCH:-}"
if [ -z "$bench_bin" ]; then
  cargo build --release --quiet --features transcode --bin mediarouter-transcode-bench
  bench_bin="${CARGO_TARGET_DIR:-target}/release/mediarouter-transcode-bench"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
clip="${CLIP:-}"
if [ -z "$clip" ]; then
  clip="$work/in.ts"
  ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=30 -t "$secs" \
    -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -b:v 6000k -f mpegts "$clip"
fi
bench() { "$bench_bin" "$clip" --repeat "$repeat" "$@"; }
video='video: {height: 720, bitrate: 1500k}'
echo "== warm-up: the driver compiles FFmpeg's CUDA kernels (scale_cuda) on first use and caches them"
"$bench_bin" "$clip" --conf "{hwaccel: cuda, $video, fallback: software}" || true
echo "== decode only, hwaccel cuda (NVDEC)"
bench --decode-only --conf "{hwaccel: cuda, $video, fallback: software}" || true
echo "== decode only, hwaccel none (software)"
bench --decode-only --conf "{hwaccel: none, $video, fallback: software}"
for round in 1 2; do
  echo "== stage, hwaccel auto, fallback software (NVDEC + scale_cuda + NVENC when they open, else libx264), round $round"
  bench --conf "{hwaccel: auto, $video, fallback: software}"
  echo "== stage, hwaccel none (software decode, swscale, libx264), for comparison, round $round"
  bench --conf "{hwaccel: none, $video, fallback: software}"
done
echo "== stage, hwaccel cuda, H.265 out (hevc_nvenc, else libx265)"
bench --conf "{hwaccel: cuda, video: {codec: h265, height: 720, bitrate: 1500k}, fallback: software}" || true
echo "== stage, hwaccel auto, fallback copy (what a path does without NVENC)"
bench --conf "{hwaccel: auto, $video, fallback: copy}" || true
