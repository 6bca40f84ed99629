#!/usr/bin/env bash
# Checks the Dockerfile's runtime stage without a container registry (none is reachable
# here): mmdebstrap builds Debian 12 with the packages that stage installs, the binary
# built with the transcode feature goes in as the Dockerfile puts it, and it runs there
# as the image's user (chroot, root needed): every shared library resolves, the default
# config loads, and the server answers RTSP. The build stage (rust:1-bookworm) is not
# run: it needs the registry. Usage: scripts/container-check.sh [binary]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/mediarouter}
[ -x "$bin" ] || cargo build --release --locked --features transcode --bin mediarouter
libs=$(ldd "$bin")
grep -q libavcodec <<<"$libs" || { echo "$bin was built without --features transcode" >&2; exit 1; }

# The runtime stage's package list, read from the Dockerfile itself.
pkgs=$(sed -n '/^FROM debian:bookworm-slim AS runtime/,/^COPY/p' Dockerfile \
  | sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' \
  | grep -E '^(lib|ca-)' | paste -sd, -)
echo "runtime packages: $pkgs"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mmdebstrap --quiet --variant=apt --include="$pkgs" \
  --customize-hook='chroot "$1" useradd --system --uid 10001 --user-group --home-dir /var/lib/mediarouter --create-home mediarouter' \
  bookworm "$root/fs"
install -D -m 755 "$bin" "$root/fs/usr/bin/mediarouter"
install -D -m 644 mediarouter.yml "$root/fs/etc/mediarouter/mediarouter.yml"
run() { chroot --userspec=10001:10001 "$root/fs" "$@"; }
inside=$(chroot "$root/fs" ldd /usr/bin/mediarouter)
if grep 'not found' <<<"$inside"; then
  echo "FAIL: libraries missing from the runtime stage" >&2; exit 1
fi
run /usr/bin/mediarouter --version
run /usr/bin/mediarouter --check /etc/mediarouter/mediarouter.yml
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MEDIAROUTER_RTSPADDRESS=127.0.0.1:$port MEDIAROUTER_RTSPTRANSPORTS='[tcp]' MEDIAROUTER_RTMP=no \
  MEDIAROUTER_HLS=no MEDIAROUTER_WEBRTC=no \
  chroot --userspec=10001:10001 "$root/fs" /usr/bin/mediarouter /etc/mediarouter/mediarouter.yml &
pid=$!
for _ in $(seq 50); do
  reply=$(printf 'OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n\r\n' | timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; cat >&3; head -c 15 <&3" 2>/dev/null || true)
  [ "${reply:0:12}" = "RTSP/1.0 200" ] && break
  sleep 0.2
done
kill $pid; wait $pid 2>/dev/null || true
[ "${reply:0:12}" = "RTSP/1.0 200" ] || { echo "FAIL: no RTSP answer from the runtime stage" >&2; exit 1; }
echo "PASS: the runtime stage runs mediarouter as uid 10001 (RTSP answered on :$port)"
