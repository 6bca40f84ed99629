#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECS seconds each and appends a row per
# target to target/fuzz-report.md: executions, executions per second, coverage (edges
# libFuzzer counts, `cov`) and features (`ft`), corpus size, and whether it crashed.
# Needs `cargo install cargo-fuzz`; the toolchain is stable, hence RUSTC_BOOTSTRAP.
#
#   scripts/fuzz-all.sh 300                # 5 minutes per target
#   scripts/fuzz-all.sh 60 amf0 ts_demux   # just these
#   FUZZ_RUNS=10000000 scripts/fuzz-all.sh 1800   # 10 M executions or 30 min, first
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"; shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(grep '^name = ' fuzz/Cargo.toml | tail -n +2 | cut -d'"' -f2)
fi
report=target/fuzz-report.md
mkdir -p target
[ -f "$report" ] || printf '| target | seconds | executions | exec/s | cov | ft | corpus | result |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n' > "$report"
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  log="target/fuzz-$t.log"
  t0=$(date +%s)
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -runs="${FUZZ_RUNS:--1}" -print_final_stats=1 -rss_limit_mb=2048 > "$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - t0 ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  last=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
  corpus=$(ls "fuzz/corpus/$t" | wc -l)
  result=ok; [ $rc -ne 0 ] && result="CRASH (see $log, fuzz/artifacts/$t)"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$took" "${execs:-?}" \
    "$(( ${execs:-0} / (took > 0 ? took : 1) ))" "${cov:-?}" "${ft:-?}" "$corpus" "$result" >> "$report"
  echo "$t: $result, ${execs:-?} executions, cov ${cov:-?}"
done
