#!/bin/sh
# Point-in-time restore (spec.restore.targetTime): lays the newest base backup that ended at or
# before the target down as the PostgreSQL data directory and replays archived WAL onto it up to
# the target, then promotes. Run by the operator's restore Job while PostgreSQL is scaled to zero
# (the data volume mounted as in the PostgreSQL pod, the backup volume at $BACKUP_DIR), and by the
# tests. Refuses, saying why, a target outside what the backups can reach; nothing is changed
# then. The data directory found is kept beside the restored one as pgdata.before-restore (the
# previous one of those is removed), and put back if the replay fails.
#   PGDATA        the data directory to replace
#   BACKUP_DIR    default /backups (base/ and wal/, as base-backup.sh and wal-archive.sh write them)
#   TARGET_EPOCH  the target in seconds since the epoch, and TARGET_TIME the same point as
#                 PostgreSQL reads it (e.g. 2026-12-04 17:00:00.25+00); both unset: the latest
#                 point the archive reaches
#   PGUSER        the superuser; its password and the platform role's are set again from
#   POSTGRES_PASSWORD_FILE, OYL_DB_PASSWORD_FILE, OYL_DB_USER (when set), so that a backup of
#                 another platform opens with this one's credentials
set -eu
data="${PGDATA:?PGDATA must be set}"
dir="${BACKUP_DIR:-/backups}"
parent="$(dirname "$data")"
aside="$parent/pgdata.before-restore"
fail() { echo "restore refused: $*" >&2; exit 1; }
when() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
if [ -n "${TARGET_EPOCH:-}" ]; then
  target="${TARGET_TIME:?TARGET_TIME must be set with TARGET_EPOCH}"
else
  target=latest
fi

# PostgreSQL must have stopped: a clean shutdown removes postmaster.pid.
tries=0
while [ -e "$data/postmaster.pid" ] && [ ! -e "$data/recovery.signal" ]; do
  tries=$((tries + 1))
  [ "$tries" -lt "${RESTORE_WAIT_SECONDS:-300}" ] \
    || fail "PostgreSQL still holds $data ($data/postmaster.pid exists): it has not stopped"
  sleep 1
done

# The newest base backup that ended at or before the target.
chosen=""
oldest=""
for b in $(ls -1 "$dir/base" 2>/dev/null | grep -E '^[0-9]{8}T[0-9]{6}Z$' | sort -r); do
  end="$(sed -n 's/^end_epoch=//p' "$dir/base/$b/info")"
  [ -n "$end" ] || continue
  oldest="$end"
  if [ "$target" = latest ] || [ "$end" -le "$TARGET_EPOCH" ]; then
    chosen="$b"
    break
  fi
done
if [ -z "$chosen" ]; then
  [ -n "$oldest" ] || fail "no base backups in $dir/base"
  fail "$target is before the first recoverable point, $(when "$oldest") (the end of the oldest base backup)"
fi
if [ "$target" != latest ] && [ "$TARGET_EPOCH" -gt "$(date -u +%s)" ]; then
  fail "$target is in the future"
fi
echo "restoring base backup $chosen, then WAL up to $target"

# Set the data directory aside (unless an earlier attempt did and stopped half-way: then the
# directory found is that attempt's, and the one aside is the original).
if [ -e "$data/recovery.signal" ] && [ -d "$aside" ]; then
  rm -rf "$data"
else
  rm -rf "$aside"
  if [ -d "$data" ]; then mv "$data" "$aside"; fi
fi
undo() {
  rm -rf "$data"
  if [ -d "$aside" ]; then mv "$aside" "$data"; fi
}
mkdir -m 700 "$data"
tar -xzf "$dir/base/$chosen/base.tar.gz" -C "$data" || { undo; fail "cannot read base backup $chosen"; }
mkdir -p -m 700 "$data/pg_wal"
: > "$data/recovery.signal"

# Replay on a server that only listens on a private socket, archives nothing, and promotes at
# the target (or at the end of the archive).
sock="$(mktemp -d)"
log="$sock/postgres.log"
set -- -D "$data" -c listen_addresses= -c unix_socket_directories="$sock" -c archive_mode=off \
  -c "restore_command=test -f '$dir/wal/%f.gz' && gzip -dc '$dir/wal/%f.gz' > '%p'" \
  -c recovery_target_action=promote
if [ "$target" != latest ]; then set -- "$@" -c "recovery_target_time=$TARGET_TIME"; fi
postgres "$@" > "$log" 2>&1 &
pid=$!
while [ "$(psql -h "$sock" -d postgres -XtAc 'select pg_is_in_recovery()' 2>/dev/null || true)" != f ]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || true
    tail -n 20 "$log" >&2
    undo
    if grep -q 'before configured recovery target' "$log"; then
      fail "$target is after the last recoverable point: the archived WAL ends before it"
    fi
    fail "PostgreSQL stopped during the replay (its log is above); the data directory is back as it was"
  fi
  sleep 1
done
# The credentials of this platform, from its Secret's files (no argv, no environment).
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  psql -h "$sock" -d postgres -Xq -v ON_ERROR_STOP=1 --set=role="${PGUSER:-postgres}" <<'SQL'
\set password `cat "$POSTGRES_PASSWORD_FILE"`
ALTER ROLE :"role" PASSWORD :'password';
SQL
fi
if [ -n "${OYL_DB_PASSWORD_FILE:-}" ] && [ -n "${OYL_DB_USER:-}" ]; then
  psql -h "$sock" -d postgres -Xq -v ON_ERROR_STOP=1 --set=role="$OYL_DB_USER" <<'SQL'
\set password `cat "$OYL_DB_PASSWORD_FILE"`
ALTER ROLE :"role" PASSWORD :'password';
SQL
fi
reached="$(psql -h "$sock" -d postgres -XtAc "select coalesce(to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'none')")"
kill -INT "$pid"
wait "$pid" || true
[ ! -e "$data/postmaster.pid" ] || fail "PostgreSQL did not stop cleanly after the replay"
rm -rf "$sock"
echo "restored base backup $chosen and WAL up to $target (last transaction replayed: $reached)"
