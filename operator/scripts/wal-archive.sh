#!/bin/sh
# PostgreSQL's archive_command when WAL archiving is on (spec.backup.walArchiving): copies one
# finished WAL segment (or a timeline history or backup history file), gzip-compressed, into
# $WAL_DIR (default /backups/wal) as <name>.gz. The operator runs it as
#   archive_command = '/bin/sh /oyl/scripts/wal-archive.sh %p %f'
# It exits 0 only once the file is complete under its final name and synced, so PostgreSQL keeps
# a segment (and retries it) until it is archived: a full or missing volume shows as a failing
# archiver (pg_stat_archiver) and a growing pg_wal, never as a hole in the archive. It never
# overwrites: the same content archived before is success (PostgreSQL retries after a crash),
# other content under the same name is an error.
set -eu
path="${1:?usage: wal-archive.sh PATH NAME}"
name="${2:?usage: wal-archive.sh PATH NAME}"
dir="${WAL_DIR:-/backups/wal}"
mkdir -p "$dir"
final="$dir/$name.gz"
if [ -f "$final" ]; then
  if gzip -dc "$final" | cmp -s - "$path"; then
    exit 0
  fi
  echo "wal-archive: $final exists with other content: not overwriting it" >&2
  exit 1
fi
tmp="$dir/.$name.gz.partial"
gzip -1 -c "$path" > "$tmp"
sync "$tmp" 2>/dev/null || sync
mv "$tmp" "$final"
