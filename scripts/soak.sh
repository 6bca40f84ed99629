#!/usr/bin/env bash
# Soak (issue 23): the release binary for SOAK_SECS (default 30 minutes) under four
# publishers, churning readers on every protocol and a reload every 2 minutes; the
# report (RSS, open files, threads, CPU every 10 s, and the pass/fail summary) goes to
# target/soak/soak-<secs>s.md. CI runs the same test for 120 s (debug build).
#
#   scripts/soak.sh            # 30 minutes
#   scripts/soak.sh 600        # 10 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-1800}"
SOAK_SECS="$secs" cargo test --release --test soak -- --nocapture 2>&1 \
  | grep -v '^\[server\]' | tail -n 40
echo "report: target/soak/soak-${secs}s.md"
