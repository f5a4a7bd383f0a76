#!/usr/bin/env bash
# A throwaway PostgreSQL for the server's test suite (no Docker, no systemd).
#
#   eval "$(tests/services/postgres.sh | tail -n1)"   # sets TEST_DATABASE_URL
#   cargo test -p oyl-server                           # now also runs against PostgreSQL
#   tests/services/postgres-down.sh
#
# Installs PostgreSQL from apt when missing, creates a cluster under $OYL_TEST_PG_DIR (default
# /tmp/oyl-test-postgres) listening on 127.0.0.1:$OYL_TEST_PG_PORT (default 25432) only, with
# trust authentication and durability switched off (it is thrown away), starts it, waits until it
# accepts connections, and prints TEST_DATABASE_URL=... as its last line. Idempotent: a running
# cluster is reused. Works as root (the server runs as the `postgres` user) or as any other user.
set -euo pipefail

PORT="${OYL_TEST_PG_PORT:-25432}"
DIR="${OYL_TEST_PG_DIR:-/tmp/oyl-test-postgres}"
DATA="$DIR/data"

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1
}

BIN="$(find_bin)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  log "installing postgresql from apt"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  else
    sudo -n env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -qq && apt-get install -y -qq postgresql' >&2
  fi
  BIN="$(find_bin)"
fi
[ -x "$BIN/initdb" ] || { log "initdb not found after installing postgresql"; exit 1; }

# PostgreSQL refuses to run as root: use the postgres system user (created by the package).
if [ "$(id -u)" -eq 0 ]; then
  OWNER=postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  OWNER="$(id -un)"
  as_owner() { "$@"; }
fi

mkdir -p "$DIR"
chown "$OWNER" "$DIR" 2>/dev/null || true
chmod 700 "$DIR"

if [ ! -s "$DATA/PG_VERSION" ]; then
  log "creating a cluster in $DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
fi

if as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  log "already running"
else
  log "starting on 127.0.0.1:$PORT"
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t 60 start -o \
    "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=300 \
     -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null \
    || { log "start failed; log follows"; tail -n 50 "$DIR/postgres.log" >&2; exit 1; }
fi

for _ in $(seq 1 120); do
  if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres; then
    echo "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
    exit 0
  fi
  sleep 0.5
done
log "PostgreSQL did not become ready; log follows"
tail -n 50 "$DIR/postgres.log" >&2
exit 1
