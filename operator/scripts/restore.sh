#!/bin/sh
# Restores a PostgreSQL backup written by backup.sh into $DATABASE_URL. Run by the operator's
# restore Job and by the tests. Refuses, with a message saying why, a dump whose checksum does
# not match (corrupt or truncated) or that pg_restore cannot read; nothing is changed then.
#   BACKUP_FILE  a file name in $BACKUP_DIR (default /backups), or `latest`
set -eu
(set -o pipefail) 2>/dev/null && set -o pipefail
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
want="${BACKUP_FILE:-latest}"
fail() { echo "restore refused: $*" >&2; exit 1; }

if [ "$want" = latest ]; then
  want="$(ls -1 "$dir" | grep -E '^postgres-.*\.dump$' | sort | tail -n 1 || true)"
  [ -n "$want" ] || fail "no backups in $dir"
fi
case "$want" in */*|.*) fail "BACKUP_FILE must be a file name in $dir, not a path: $want" ;; esac
[ -f "$dir/$want" ] || fail "$dir/$want does not exist"
[ -f "$dir/$want.sha256" ] || fail "$dir/$want.sha256 is missing: the backup did not complete"
(cd "$dir" && sha256sum -c "$want.sha256" >/dev/null 2>&1) \
  || fail "$want does not match its checksum: the file is corrupt or truncated"
pg_restore --list "$dir/$want" >/dev/null 2>&1 || fail "$want is not a readable pg_dump archive"

# The database may still be starting (a new platform restores before its API runs).
tries=0
until pg_isready -d "$DATABASE_URL" >/dev/null 2>&1; do
  tries=$((tries + 1)); [ "$tries" -lt "${RESTORE_WAIT_SECONDS:-300}" ] || fail "database not reachable"
  sleep 1
done
pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error \
  --dbname="$DATABASE_URL" "$dir/$want"
echo "restored $dir/$want"
