#!/bin/sh
# Archives ChromaDB's data directory ($CHROMA_DATA, default /chroma-data, mounted read-only) to
# /backups as a gzipped tar. Same rules as backup.sh: fail loudly, final name only when
# complete, checksum beside it, keep the newest $BACKUP_RETENTION (and, with
# $BACKUP_RETENTION_DAYS, none older than that many days but the newest).
#
# Consistency: the archive is taken while ChromaDB runs, file by file. ChromaDB keeps its
# metadata in SQLite (write-ahead log included in the archive, so it recovers like after a
# crash) and its vectors in segment files it flushes in batches; writes that land during the
# archive may be missing or half-present. It is crash-consistent at best: take it when no
# ingestion runs (the schedule's default, 02:00), or re-process documents after a restore.
set -eu
(set -o pipefail) 2>/dev/null && set -o pipefail
src="${CHROMA_DATA:-/chroma-data}"
dir="${BACKUP_DIR:-/backups}"
keep="${BACKUP_RETENTION:-7}"
days="${BACKUP_RETENTION_DAYS:-}"
case "$days" in '') ;; *[!0-9]*|0*) echo "BACKUP_RETENTION_DAYS must be a positive integer, not '$days'" >&2; exit 2 ;; esac
cut=""; [ -z "$days" ] || cut="$(date -u -d "@$(($(date -u +%s) - days * 86400))" +%Y%m%dT%H%M%SZ)"
name="chroma-$(date -u +%Y%m%dT%H%M%SZ).tar.gz"
[ -d "$src" ] || { echo "no ChromaDB data directory at $src" >&2; exit 1; }

tar -C "$src" -czf "$dir/.$name.partial" .
sum="$(sha256sum "$dir/.$name.partial")"
printf '%s  %s\n' "${sum%% *}" "$name" > "$dir/.$name.sha256.partial"
mv "$dir/.$name.sha256.partial" "$dir/$name.sha256"
mv "$dir/.$name.partial" "$dir/$name"
echo "backup written: $dir/$name ($(wc -c < "$dir/$name") bytes)"

ls -1 "$dir"/chroma-*.tar.gz | sort -r | awk -v keep="$keep" -v cut="$cut" '{ t = $0; sub(/.*-/, "", t) } NR > keep || (NR > 1 && t < cut)' | while read -r old; do
  rm -f "$old" "$old.sha256"
  echo "pruned: $old"
done
