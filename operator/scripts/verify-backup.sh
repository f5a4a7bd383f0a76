#!/bin/sh
# Proves the newest PostgreSQL dump restorable without touching the live database: run by the
# backup-verify CronJob (weekly by default, spec.backup.verify) and by the tests. It checks the
# dump's checksum, counts the rows the dump holds per table (its own COPY data: what the backup
# recorded), restores it into a throwaway PostgreSQL of its own (an empty scratch directory, a
# private Unix socket, nothing on the network), and checks the restored database: every table
# holds exactly the rows the dump recorded, the schema version (sqlx's migrations) is the dump's
# and not 0, and a query over the platform's tables answers (every workspace joins its tenant).
#   BACKUP_DIR   default /backups (read-only is enough)
#   SCRATCH      default /scratch: an empty, writable directory for the throwaway server
#   REPORT_FILE  default /dev/termination-log (the operator reads it as the pod's termination
#                message)
# Prints one JSON line, also written to REPORT_FILE:
#   {"dump":"postgres-<time>.dump","schemaVersion":N,"tables":T,"rows":R,"failure":null}
# or, when the dump cannot be verified, "failure" says why and the script exits 1.
set -eu
dir="${BACKUP_DIR:-/backups}"
scratch="${SCRATCH:-/scratch}"
report="${REPORT_FILE:-/dev/termination-log}"
dump=""
version=0
tables=0
rows=0

# JSON string: backslashes and quotes escaped, control characters as spaces, at most 600 bytes
# (a termination message holds 4 KiB).
json_string() { printf '%s' "$1" | tr '\n\r\t' '   ' | cut -c 1-600 | sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/"/'; }
finish() {
  failure="$1"
  if [ -n "$failure" ]; then failure="$(json_string "$failure")"; else failure=null; fi
  if [ -n "$dump" ]; then d="$(json_string "$dump")"; else d=null; fi
  line="{\"dump\":$d,\"schemaVersion\":$version,\"tables\":$tables,\"rows\":$rows,\"failure\":$failure}"
  printf '%s\n' "$line"
  printf '%s\n' "$line" > "$report" 2>/dev/null || echo "verify-backup: cannot write $report" >&2
  [ "$failure" = null ] || exit 1
  exit 0
}
fail() { echo "verify-backup: $*" >&2; finish "$*"; }

dump="$(ls -1 "$dir" 2>/dev/null | grep -E '^postgres-.*\.dump$' | sort | tail -n 1 || true)"
[ -n "$dump" ] || fail "no PostgreSQL dump in $dir to verify"
[ -f "$dir/$dump.sha256" ] || fail "$dump has no checksum: the backup did not complete"
(cd "$dir" && sha256sum -c "$dump.sha256" >/dev/null 2>&1) \
  || fail "$dump does not match its checksum: the file is corrupt or truncated"

# What the dump holds: per table the rows of its COPY block ("schema.table rows"), and the
# newest migration in sqlx's table.
work="$scratch/verify"
rm -rf "$work"
mkdir -p "$work"
# (Streamed: the data is never written out; pg_restore's errors are what tells a failure.)
pg_restore --data-only --file=- "$dir/$dump" 2> "$work/err" | awk -v out="$work/expected" -v ver="$work/version" '
  /^COPY / { table = $2; n = 0; max = 0; copying = 1; next }
  copying && $0 == "\\." {
    print table, n > out
    if (table ~ /(^|\.)_sqlx_migrations$/) print max > ver
    copying = 0; next
  }
  copying { n++; split($0, f, "\t"); if (f[1] + 0 > max) max = f[1] + 0 }
'
[ ! -s "$work/err" ] || fail "$dump is not a readable pg_dump archive: $(tail -n 3 "$work/err")"
[ -s "$work/expected" ] || fail "$dump holds no table data"
expected_version="$(cat "$work/version" 2>/dev/null || echo 0)"

# The throwaway server: trust on a private socket only, no fsync, small memory.
export PGHOST="$work" PGUSER=postgres PGDATABASE=verify
initdb -D "$work/pgdata" -U postgres --auth=trust --no-sync -E UTF8 > "$work/initdb.log" 2>&1 \
  || fail "initdb failed: $(tail -n 3 "$work/initdb.log")"
pg_ctl -D "$work/pgdata" -l "$work/postgres.log" -w -o "-c listen_addresses= \
  -c unix_socket_directories=$work -c fsync=off -c shared_buffers=16MB \
  -c dynamic_shared_memory_type=mmap -c max_connections=10" start > /dev/null \
  || fail "the throwaway PostgreSQL did not start: $(tail -n 3 "$work/postgres.log")"
trap 'pg_ctl -D "$work/pgdata" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
createdb verify
pg_restore --no-owner --no-acl --exit-on-error --single-transaction --dbname=verify \
  "$dir/$dump" 2> "$work/err" || fail "restoring $dump failed: $(tail -n 3 "$work/err")"

q() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
while read -r table n; do
  got="$(q "select count(*) from $table")" || fail "cannot read $table from the restored $dump"
  [ "$got" = "$n" ] || fail "$table: $got rows restored from $dump, which holds $n"
  tables=$((tables + 1))
  rows=$((rows + n))
done < "$work/expected"

version="$(q "select coalesce(max(version), 0) from _sqlx_migrations" 2>/dev/null)" \
  || { version=0; fail "$dump has no _sqlx_migrations table: not an Oyl database"; }
[ "$version" -gt 0 ] || fail "$dump records no migration (schema version 0)"
[ "$version" = "$expected_version" ] \
  || fail "the restored schema version is $version, the dump records $expected_version"

if [ "$(q "select count(*) from pg_tables where tablename in ('tenants', 'workspaces')")" = 2 ]; then
  joined="$(q "select count(*) from workspaces w join tenants t on t.id = w.tenant_id")"
  all="$(q "select count(*) from workspaces")"
  [ "$joined" = "$all" ] || fail "$((all - joined)) of $all workspaces have no tenant in the restored $dump"
fi
finish ""
