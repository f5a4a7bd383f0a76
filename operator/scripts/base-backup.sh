#!/bin/sh
# Physical base backups for point-in-time recovery (spec.backup.walArchiving), the starting points
# that archived WAL (wal-archive.sh) is replayed onto. Runs in the PostgreSQL pod, in its own
# container next to the server, and connects over the pod's Unix socket ($PGHOST) as the
# superuser ($PGUSER): initdb admits local connections only there, so no password and no
# replication rule for the network are needed.
#   BACKUP_DIR                    default /backups: base backups go to base/<UTC time>/ (base.tar.gz
#                                 and `info`: start and end, in seconds since the epoch, and the
#                                 first WAL segment the backup needs), the archive is wal/
#   BASE_BACKUP_RETENTION         base backups to keep (default 2); WAL that only older backups
#                                 needed is deleted with them (timeline history files are kept)
#   BACKUP_RETENTION_DAYS         optional: also prune base backups older than that many days, but
#                                 the newest of them (the window's start stays recoverable)
#   BASE_BACKUP_INTERVAL_SECONDS  when set, runs until stopped, taking a backup whenever the newest
#                                 is older than this (the first as soon as PostgreSQL is ready);
#                                 unset, takes one backup and exits
#   HEARTBEAT_FILE                touched by the loop at least every minute, also while a backup
#                                 runs (the container's probes read its age)
# A backup only gets its final name once complete, so a partial one is never chosen by a restore.
# pg_basebackup returns once the WAL the backup needs is archived: its end time is a point a
# restore can reach.
set -eu
dir="${BACKUP_DIR:-/backups}"
base="$dir/base"
wal="$dir/wal"
keep="${BASE_BACKUP_RETENTION:-2}"
case "$keep" in ''|*[!0-9]*|0) echo "BASE_BACKUP_RETENTION must be a positive integer, not '$keep'" >&2; exit 2 ;; esac
days="${BACKUP_RETENTION_DAYS:-}"
case "$days" in '') ;; *[!0-9]*|0*) echo "BACKUP_RETENTION_DAYS must be a positive integer, not '$days'" >&2; exit 2 ;; esac

backups() { ls -1 "$base" 2>/dev/null | grep -E '^[0-9]{8}T[0-9]{6}Z$' | sort || true; }
beat() { if [ -n "${HEARTBEAT_FILE:-}" ]; then touch "$HEARTBEAT_FILE"; fi; }

take() {
  mkdir -p "$base" "$wal"
  ts="$(date -u +%Y%m%dT%H%M%SZ)"
  tmp="$base/.$ts.partial"
  find "$base" -maxdepth 1 -name '.*.partial' -exec rm -rf {} + || return 1
  mkdir "$tmp" || return 1
  start="$(date -u +%s)"
  pg_basebackup --pgdata="$tmp" --format=tar --gzip --wal-method=none --checkpoint=fast \
    --no-password --label="oyl-$ts" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do beat; sleep 5; done
  wait "$pid" || return 1
  # Rounded up: a target in the same second may still lie before the backup's end.
  end="$(($(date -u +%s) + 1))"
  first="$(tar -xzOf "$tmp/base.tar.gz" backup_label \
    | sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\))$/\1/p')"
  [ -n "$first" ] || { echo "base-backup: no START WAL LOCATION in the backup's backup_label" >&2; return 1; }
  printf 'start_epoch=%s\nend_epoch=%s\nwal_start=%s\n' "$start" "$end" "$first" > "$tmp/info" || return 1
  sync
  mv "$tmp" "$base/$ts" || return 1
  echo "base backup written: $base/$ts ($(wc -c < "$base/$ts/base.tar.gz") bytes, needs WAL from $first)"
  prune
}

# Keeps the newest $keep backups, with $BACKUP_RETENTION_DAYS none older than that many days but
# the newest of those (a restore to any time in the window starts from it), and the WAL from the
# oldest kept one's first segment on. WAL names compare by their last 16 digits (log and
# segment), whatever their timeline, as pg_archivecleanup does.
prune() {
  cut=""; [ -z "$days" ] || cut="$(date -u -d "@$(($(date -u +%s) - days * 86400))" +%Y%m%dT%H%M%SZ)"
  backups | sort -r | awk -v keep="$keep" -v cut="$cut" 'NR > keep || ($0 < cut && older++)' \
    | while read -r old; do
    rm -rf "${base:?}/$old"
    echo "pruned base backup $old"
  done
  oldest="$(backups | head -n 1)"
  [ -n "$oldest" ] || return 0
  first="$(sed -n 's/^wal_start=//p' "$base/$oldest/info")"
  [ -n "$first" ] || return 0
  # (No {24} in the patterns: mawk, Debian's awk, has no intervals.)
  ls -1 "$wal" | awk -v first="$first" '
    /^[0-9A-F]+(\.[0-9A-F]+\.backup)?\.gz$/ && index($0, ".") == 25 {
      if (substr($0, 9, 16) "" < substr(first, 9, 16) "") print
    }
  ' | while read -r old; do
    rm -f "${wal:?}/$old"
  done
}

if [ -z "${BASE_BACKUP_INTERVAL_SECONDS:-}" ]; then
  take
  exit
fi
case "$BASE_BACKUP_INTERVAL_SECONDS" in *[!0-9]*|0) echo "BASE_BACKUP_INTERVAL_SECONDS must be a positive integer" >&2; exit 2 ;; esac
# A stop (the pod's SIGTERM) ends the wait at once.
trap 'exit 0' TERM INT
while :; do
  beat
  newest="$(backups | tail -n 1)"
  due=1
  if [ -n "$newest" ]; then
    end="$(sed -n 's/^end_epoch=//p' "$base/$newest/info")"
    [ "$(($(date -u +%s) - ${end:-0}))" -ge "$BASE_BACKUP_INTERVAL_SECONDS" ] || due=0
  fi
  if [ "$due" = 1 ] && pg_isready -q; then
    take || echo "base backup failed; trying again in a minute" >&2
  fi
  sleep "${BASE_BACKUP_POLL_SECONDS:-60}" &
  wait $! || true
done
