#!/usr/bin/env bash
# Builds the release packages into target/packages/: the .deb (cargo-deb) and the .rpm
# (rpmbuild, from Debian's `rpm`), both with the transcode stage, a source tarball of
# HEAD, and the Homebrew formula for that tarball. Installs cargo-deb when missing, and
# rpm too when run as root.
# Needs FFmpeg's dev packages and libclang (README, Test). packaging/README.md says
# how the packages are checked.
# Usage: scripts/package.sh
#   SOURCE_URL=…    where the formula fetches the tarball
#   RPM_SIGN_KEY=…  a GnuPG key name: signs the .rpm with it
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
out=target/packages
mkdir -p "$out" target/packaging
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
if ! command -v rpmbuild >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rpm >/dev/null
  else
    echo "rpmbuild is missing: apt-get install rpm" >&2
    exit 1
  fi
fi
gzip -9n -c packaging/mediarouter.1 > target/packaging/mediarouter.1.gz
# cargo-deb builds target/release/mediarouter with the features its metadata names
# (and strips its copy); the .rpm packs that same binary, stripped here.
cargo deb --locked --output "$out/"
strip -s -o target/packaging/mediarouter target/release/mediarouter
top="$PWD/target/rpmbuild"
rm -rf "$top"
# The inputs are stripped and compressed already: no post-install processing (whose
# scripts also assume bash where Debian's /bin/sh is dash).
rpmbuild -bb --quiet --define "_topdir $top" --define "_sourcedir $PWD" \
  --define "version $version" --define "__os_install_post %{nil}" \
  packaging/rpm/mediarouter.spec
cp "$top"/RPMS/*/mediarouter-"$version"-1.*.rpm "$out/"
if [ -n "${RPM_SIGN_KEY:-}" ]; then
  rpmsign --addsign --define "_gpg_name $RPM_SIGN_KEY" --define "__gpg $(command -v gpg)" \
    "$out"/mediarouter-"$version"-1.*.rpm
fi
tarball="$out/mediarouter-$version.tar.gz"
git archive --format=tar.gz --prefix="mediarouter-$version/" -o "$tarball" HEAD
sha="$(sha256sum "$tarball" | cut -d' ' -f1)"
url="${SOURCE_URL:-https://github.com/mediarouter/mediarouter/releases/download/v$version/mediarouter-$version.tar.gz}"
sed -e "s|^  url \".*\"|  url \"$url\"|" -e "s|^  sha256 \".*\"|  sha256 \"$sha\"|" \
  -e '/^# Homebrew formula/,/^# template/d' \
  packaging/homebrew/mediarouter.rb > "$out/mediarouter.rb"
ls -l "$out"
