#!/usr/bin/env bash
# One-command fan-out benchmark, mediarouter vs nginx-rtmp (see BENCHMARKS.md):
# installs ffmpeg, nginx and its RTMP module if missing (without starting the system
# nginx), builds release, then runs bench/bench.py (arguments pass through, e.g.
# --readers 100,500 --window 4). Loopback only; takes about 6 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v python3 >/dev/null || need+=(python3)
command -v nginx >/dev/null || need+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The benchmark runs its own nginx on loopback; keep the packaged service stopped.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release --locked --bins
exec python3 bench/bench.py "$@"
