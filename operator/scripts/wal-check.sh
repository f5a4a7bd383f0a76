#!/bin/sh
# The WAL archive's health and the window a point-in-time restore can reach, for the platform's
# status (spec.backup.walArchiving). Run by the wal-check CronJob every archiveTimeoutSeconds
# (rounded up to whole minutes) and by the tests. Connects like backup.sh and reads
# pg_stat_archiver (readable by any role), and the base backups on the backup volume, read-only.
# Prints one JSON line, also written to $REPORT_FILE (default /dev/termination-log: the operator
# reads it as the pod's termination message):
#   {"first":EPOCH,"last":EPOCH,"failure":"..."}        (each may be null)
#   first    the end of the oldest base backup: the earliest point a restore can reach
#            (restore-pitr.sh refuses targets before it)
#   last     the newest archived WAL's archive time, not before `first`: what a restore to
#            "latest" reaches at least (null without a base backup: nothing is recoverable)
#   failure  set when PostgreSQL's last attempt to archive a segment failed (the archive volume
#            is full or unwritable, ...): the segment, when, and the last success
# Exits 1 when archiving fails, so the Job fails too; 0 otherwise. A check that cannot run
# (PostgreSQL unreachable) exits with psql's status and no report.
set -eu
# The connection URL: from $DATABASE_URL_FILE (the mounted Secret, as the operator runs this) or
# $DATABASE_URL. libpq gets it without its password, which goes through PGPASSWORD (percent-
# decoded): an argv is visible to `ps` on the node, this process's environment only to its user.
# (The same block is in backup.sh, restore.sh and wal-check.sh; tests/e2e/backup_scripts.rs keeps
# them equal.)
if [ -n "${DATABASE_URL_FILE:-}" ]; then DATABASE_URL="$(cat "$DATABASE_URL_FILE")"; fi
: "${DATABASE_URL:?DATABASE_URL or DATABASE_URL_FILE must be set}"
case "$DATABASE_URL" in
  *://*:*@*)
    rest="${DATABASE_URL#*://}"
    userinfo="${rest%%@*}"
    PGPASSWORD="$(printf '%s' "${userinfo#*:}" | awk '{
      s = $0; out = ""; hex = "0123456789abcdef"
      while ((i = index(s, "%")) > 0) {
        a = index(hex, tolower(substr(s, i + 1, 1))); b = index(hex, tolower(substr(s, i + 2, 1)))
        if (a && b) { out = out substr(s, 1, i - 1) sprintf("%c", (a - 1) * 16 + b - 1); s = substr(s, i + 3) }
        else { out = out substr(s, 1, i); s = substr(s, i + 1) }
      }
      printf "%s", out s }')"
    export PGPASSWORD
    DATABASE_URL="${DATABASE_URL%%://*}://${userinfo%%:*}@${rest#*@}"
    ;;
esac
# END of the connection block
dir="${BACKUP_DIR:-/backups}"
report="${REPORT_FILE:-/dev/termination-log}"
when() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

first=""
oldest="$(ls -1 "$dir/base" 2>/dev/null | grep -E '^[0-9]{8}T[0-9]{6}Z$' | sort | head -n 1 || true)"
if [ -n "$oldest" ]; then
  first="$(sed -n 's/^end_epoch=//p' "$dir/base/$oldest/info" 2>/dev/null || true)"
fi

row="$(psql "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -F '|' -c "
  select coalesce(floor(extract(epoch from last_archived_time))::bigint::text, ''),
         coalesce(last_archived_wal, ''),
         coalesce(floor(extract(epoch from last_failed_time))::bigint::text, ''),
         coalesce(last_failed_wal, ''),
         coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)
  from pg_stat_archiver")"
IFS='|' read -r archived archived_wal failed failed_wal failing <<ROW
$row
ROW

last=""
if [ -n "$first" ]; then
  last="$first"
  if [ -n "$archived" ] && [ "$archived" -gt "$first" ]; then last="$archived"; fi
fi

failure=""
if [ "$failing" = t ]; then
  failure="archiving WAL segment $failed_wal failed at $(when "$failed")"
  if [ -n "$archived" ]; then
    failure="$failure; the last segment archived was $archived_wal at $(when "$archived")"
  else
    failure="$failure; no segment has been archived yet"
  fi
  failure="$failure (see PostgreSQL's log: is the backup volume full or unwritable?)"
fi

json() { if [ -n "$1" ]; then printf '%s' "$1"; else printf null; fi; }
line="{\"first\":$(json "$first"),\"last\":$(json "$last"),\"failure\":$(json "${failure:+\"$failure\"}")}"
printf '%s\n' "$line"
printf '%s\n' "$line" > "$report" 2>/dev/null || echo "wal-check: cannot write $report" >&2
if [ -n "$failure" ]; then
  echo "wal-check: $failure" >&2
  exit 1
fi
