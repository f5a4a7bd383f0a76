#!/usr/bin/env bash
# Stops and deletes the throwaway PostgreSQL started by postgres.sh. Idempotent.
set -euo pipefail
DIR="${OYL_TEST_PG_DIR:-/tmp/oyl-test-postgres}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
if [ -n "$BIN" ] && [ -s "$DIR/data/PG_VERSION" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  else
    "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
fi
rm -rf "$DIR"
echo "postgres-down.sh: stopped and removed $DIR" >&2
