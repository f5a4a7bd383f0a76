#!/bin/sh
# Backs up the platform database to /backups. Run by the backup CronJob (the operator embeds this
# file) and by the tests. Fails loudly on any error; a dump only gets its final name once it is
# complete, next to its checksum, so a partial file never looks like a backup.
set -eu
# pipefail where the shell has it (busybox ash does; dash does not, so no pipeline below
# carries data that matters).
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
keep="${BACKUP_RETENTION:-7}"
days="${BACKUP_RETENTION_DAYS:-}"
case "$days" in '') ;; *[!0-9]*|0*) echo "BACKUP_RETENTION_DAYS must be a positive integer, not '$days'" >&2; exit 2 ;; esac
cut=""; [ -z "$days" ] || cut="$(date -u -d "@$(($(date -u +%s) - days * 86400))" +%Y%m%dT%H%M%SZ)"
ts="$(date -u +%Y%m%dT%H%M%SZ)"
name="postgres-$ts.dump"

# pg_dump refuses a server of a newer major version: say so, and how to fix it, before trying.
server="$(psql --dbname="$DATABASE_URL" --no-psqlrc -tAc 'show server_version_num')"
server_major=$((server / 10000))
client_major="$(pg_dump --version | sed -n 's/^pg_dump[^0-9]*\([0-9][0-9]*\).*/\1/p')"
if [ -z "$client_major" ] || [ "$server_major" -gt "$client_major" ]; then
  echo "pg_dump ${client_major:-?} cannot dump PostgreSQL $server_major: set spec.backup.image" \
    "to a PostgreSQL $server_major image (e.g. docker.io/library/postgres:$server_major-alpine)" >&2
  exit 3
fi

pg_dump --format=custom --no-owner --dbname="$DATABASE_URL" --file="$dir/.$name.partial"
sum="$(sha256sum "$dir/.$name.partial")"
printf '%s  %s\n' "${sum%% *}" "$name" > "$dir/.$name.sha256.partial"
mv "$dir/.$name.sha256.partial" "$dir/$name.sha256"
mv "$dir/.$name.partial" "$dir/$name"
echo "backup written: $dir/$name ($(wc -c < "$dir/$name") bytes)"

# Retention: keep the newest $keep dumps (names sort by time; the one just written is among them)
# and, with $BACKUP_RETENTION_DAYS, none older than that many days but the newest ($cut is a
# name's time at the limit).
ls -1 "$dir"/postgres-*.dump | sort -r | awk -v keep="$keep" -v cut="$cut" '{ t = $0; sub(/.*-/, "", t) } NR > keep || (NR > 1 && t < cut)' | while read -r old; do
  rm -f "$old" "$old.sha256"
  echo "pruned: $old"
done
