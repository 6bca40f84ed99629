#!/usr/bin/env bash
# Installs the .deb into a fresh Debian 12 root (debootstrap), checks what it installed,
# then purges it and checks nothing is left. Needs root and the Debian mirror. CI
# doesn't run it (it takes minutes); packaging/README.md records its output.
# Usage: packaging/test-install.sh target/packages/mediarouter_*.deb
# ROOT=dir reuses a root made earlier (it is made there when missing).
set -euo pipefail
deb="$(realpath "${1:?usage: packaging/test-install.sh PACKAGE.deb}")"
root="${ROOT:-/tmp/mr-root}"
mirror="${MIRROR:-http://deb.debian.org/debian}"
unit=packaging/systemd/mediarouter.service
cd "$(dirname "$0")/.."
if [ ! -x "$root/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/mediarouter.deb"
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true; rm -f "${log:-}"' EXIT
in_root() {
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}
log="$(mktemp)"
quiet() { "$@" >>"$log" 2>&1 || { cat "$log"; return 1; }; }
step() { echo "== $*"; }

step "systemd-analyze verify $unit"
systemd-analyze verify --man=no "$unit" 2>&1 | grep -v 'Command /usr/bin/mediarouter is not executable' || true
step "systemd into the root first, as on a real system (the package enables its unit)"
quiet in_root apt-get update -qq
quiet in_root apt-get install -y -qq --no-install-recommends systemd
step "dpkg -i, then apt-get -f install (the FFmpeg libraries, adduser, procps)"
in_root dpkg -i /tmp/mediarouter.deb >>"$log" 2>&1 || true
quiet in_root apt-get -f install -y -qq
in_root dpkg-query -W -f='${Package} ${Version} ${Status}\n' mediarouter
step "mediarouter --version"
in_root mediarouter --version
step "mediarouter --check /etc/mediarouter/mediarouter.yml"
in_root mediarouter --check /etc/mediarouter/mediarouter.yml
step "the unit as installed, against the installed binary"
systemd-analyze verify --root="$root" --man=no /lib/systemd/system/mediarouter.service
step "the service user, the conffile, the unit enabled"
in_root getent passwd mediarouter
in_root dpkg-query -W -f='${Conffiles}\n' mediarouter
ls "$root/etc/systemd/system/multi-user.target.wants/" | grep mediarouter
step "apt-get purge"
quiet in_root apt-get purge -y -qq mediarouter
left=0
for p in /usr/bin/mediarouter /etc/mediarouter /lib/systemd/system/mediarouter.service \
  /var/lib/mediarouter /usr/share/doc/mediarouter /usr/share/man/man1/mediarouter.1.gz \
  /etc/systemd/system/multi-user.target.wants/mediarouter.service; do
  if [ -e "$root$p" ]; then echo "left behind: $p"; left=1; fi
done
if in_root getent passwd mediarouter >/dev/null; then echo "left behind: user mediarouter"; left=1; fi
in_root dpkg-query -W mediarouter >/dev/null 2>&1 && { echo "still known to dpkg"; left=1; }
[ "$left" = 0 ] && echo "purged: nothing left"
exit "$left"
