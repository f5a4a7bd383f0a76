#!/usr/bin/env bash
# Prints the table of a finished benchmark run again: tests/bench/report.sh api|ingest|operator DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ -x "$BENCH_BIN/report" ] || build_helpers
"$BENCH_BIN/report" "$@" | tee "$2/report.md"
