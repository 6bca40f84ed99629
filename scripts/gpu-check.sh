#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: what the transcode stage finds (CUDA decode via
# cuvid, NVENC) and its 1080p → 720p throughput, on the GPU path and in software, from
# the same clip in the same run. An H100 is expected to decode with CUDA and, having no
# NVENC, to fall back to libx264. CI doesn't run this (no GPU there).
# Needs: cargo, ffmpeg, FFmpeg's dev packages and libclang (README, Transcoding), and
# the NVIDIA driver. Usage: scripts/gpu-check.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
echo "== FFmpeg: CUDA decoders and NVENC encoders built in"
ffmpeg -hide_banner -decoders 2>/dev/null | grep -E 'cuvid' | awk '{print "decoder", $2}' || true
ffmpeg -hide_banner -encoders 2>/dev/null | grep -E 'nvenc' | awk '{print "encoder", $2}' || true
cargo build --release --quiet --features transcode --bin mediarouter-transcode-bench
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
clip="$work/in.ts"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=30 -t "$secs" \
  -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -b:v 6000k -f mpegts "$clip"
bench() { ./target/release/mediarouter-transcode-bench "$clip" --conf "$1"; }
echo "== stage, hwaccel auto (CUDA decode and NVENC when they open, else libx264)"
bench '{hwaccel: auto, video: {height: 720, bitrate: 1500k}, fallback: software}'
echo "== stage, hwaccel none (software decode and libx264), for comparison"
bench '{hwaccel: none, video: {height: 720, bitrate: 1500k}, fallback: software}'
echo "== stage, hwaccel auto, fallback copy (what a path does without NVENC)"
bench '{hwaccel: auto, video: {height: 720, bitrate: 1500k}, fallback: copy}' || true
echo "== ffmpeg CLI, CUDA decode only (reference for NVDEC throughput)"
/usr/bin/env time -f '%e s wall, %U s user' ffmpeg -hide_banner -loglevel error -hwaccel cuda \
  -i "$clip" -f null - 2>&1 || echo "ffmpeg -hwaccel cuda failed"
