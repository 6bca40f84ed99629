#!/usr/bin/env bash
# Source coverage of each fuzz target's corpus (`cargo fuzz coverage`): of mediarouter's
# own files that the corpus reaches, the lines, functions and regions it runs (a file
# it never enters is left out of the sums); one row per target is
# appended to target/fuzz-coverage.md. Needs cargo-fuzz and LLVM's llvm-profdata and
# llvm-cov of the toolchain's LLVM major version (Debian: `apt install llvm-22` for
# Rust 1.95); LLVM_BIN names their directory.
#
#   scripts/fuzz-coverage.sh                 # every target
#   scripts/fuzz-coverage.sh amf0 ts_demux   # just these
set -uo pipefail
cd "$(dirname "$0")/.."
major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
llvm="${LLVM_BIN:-/usr/lib/llvm-$major/bin}"
[ -x "$llvm/llvm-cov" ] || { echo "no llvm-cov in $llvm (apt install llvm-$major)" >&2; exit 1; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(grep '^name = ' fuzz/Cargo.toml | tail -n +2 | cut -d'"' -f2)
fi
report=target/fuzz-coverage.md
mkdir -p target
[ -f "$report" ] || printf '| target | corpus | files reached | lines | functions | regions |\n| --- | --- | --- | --- | --- | --- |\n' > "$report"
for t in "${targets[@]}"; do
  dirs=()
  [ -d "fuzz/corpus/$t" ] && dirs+=("fuzz/corpus/$t")
  [ -d "fuzz/seeds/$t" ] && dirs+=("fuzz/seeds/$t")
  log="target/fuzz-coverage-$t.log"
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz coverage --llvm-path "$llvm" "$t" "${dirs[@]}" > "$log" 2>&1; then
    echo "$t: coverage failed (see $log)"
    continue
  fi
  bin=$(ls -d {fuzz/,}target/*/coverage/*/release/"$t" 2>/dev/null | head -1)
  # mediarouter's own files that the corpus reaches at all (the libraries' lines, and
  # the parts of the crate a target has no way into, would swamp the figure).
  row=$("$llvm/llvm-cov" report "$bin" -instr-profile="fuzz/coverage/$t/coverage.profdata" \
    -ignore-filename-regex='(\.cargo|rustc|/fuzz/)' 2>/dev/null | awk '
      $1 ~ /\.rs$/ && $8 > $9 { files++; r += $2; rm += $3; f += $5; fm += $6; l += $8; lm += $9 }
      END { printf "%d %d %d %d %d %d %d", files, l - lm, l, f - fm, f, r - rm, r }')
  read -r nfiles lc lt fc ft rc rt <<< "$row"
  pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f %%", b ? 100 * a / b : 0 }'; }
  corpus=$(ls "fuzz/corpus/$t" 2>/dev/null | wc -l)
  printf '| %s | %s | %s | %s of %s (%s) | %s of %s (%s) | %s of %s (%s) |\n' "$t" "$corpus" \
    "$nfiles" "$lc" "$lt" "$(pct "$lc" "$lt")" "$fc" "$ft" "$(pct "$fc" "$ft")" \
    "$rc" "$rt" "$(pct "$rc" "$rt")" >> "$report"
  lpct=$(pct "$lc" "$lt"); fpct=$(pct "$fc" "$ft")
  echo "$t: lines $lpct, functions $fpct"
done
