#!/usr/bin/env bash
# Packs the transcode bench with the FFmpeg libraries it links, for a GPU machine that
# has no FFmpeg and no package registry (DEVELOPERS.md, GPU check). Libraries listed in
# PRESENT (one soname per line, e.g. from `ldconfig -p | awk 'NR>1{print $1}'` run on
# the target) stay behind, which keeps the bundle small.
# Usage: scripts/gpu-bundle.sh OUT.tar.xz [PRESENT]
# On the target: tar -xJf OUT.tar.xz -C /tmp && LD_LIBRARY_PATH=/tmp/gpu/lib \
#   BENCH=/tmp/gpu/mediarouter-transcode-bench CLIP=clip.ts scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/gpu-bundle.sh OUT.tar.xz [PRESENT]}"
present="${2:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/transcode}"
cargo build --release --quiet --features transcode --bin mediarouter-transcode-bench
bin="$CARGO_TARGET_DIR/release/mediarouter-transcode-bench"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/gpu/lib"
cp "$bin" "$stage/gpu/"
ldd "$bin" | awk '$3 ~ /^\// {print $1, $3}' | while read -r so path; do
  case "$so" in
    # The C runtime comes from the target; any glibc newer than the build's serves.
    libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | ld-linux*) continue ;;
  esac
  if [ -n "$present" ] && grep -qx "$so" "$present"; then continue; fi
  cp -L "$path" "$stage/gpu/lib/"
done
tar -C "$stage" -cf - gpu | xz -9 -T0 > "$out"
echo "$out: $(du -h "$out" | cut -f1), $(ls "$stage/gpu/lib" | wc -l) libraries"
