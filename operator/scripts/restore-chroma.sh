#!/bin/sh
# Brings ChromaDB's data back with a restore (the operator runs this in the restore Job, before
# PostgreSQL's restore, while ChromaDB has no pod), so that the vectors match the documents:
# from the backup volume ($BACKUP_DIR; from S3, the scratch space restore-s3-fetch.sh filled
# with what PostgreSQL needs and the one archive it chose, which this choice then picks), the
# ChromaDB archive (backup-chroma.sh) that goes with what PostgreSQL is restored to:
#   BACKUP_FILE   a dump (or `latest`, the newest): the archive of the same backup run (the first
#                 taken at or after the dump and before the next one), else the newest before it
#   TARGET_EPOCH  a point in time (seconds since the epoch; with TARGET_SET=1, empty meaning the
#                 latest): the newest archive taken at or before it
# The archive is checked against its checksum and unpacked beside the data; only then is the
# data in $CHROMA_DATA (default /chroma-data) moved to .before-restore/ there (replacing an older
# one) and the archive's put in its place. Anything refused changes nothing. With no archive to
# go with the target (none taken yet: a young platform restored to a point in time), ChromaDB's
# data is kept as it is, saying so: PostgreSQL's restore must not fail for it.
# With CHROMA_CHOOSE=1 it only chooses (restore-s3-fetch.sh runs it so, over the bucket's
# listing, to fetch the one archive this then restores from the fetched copy): the candidate
# file names come one per line on stdin instead of from $BACKUP_DIR, the chosen archive's name
# is printed (nothing when there is none to go with the target, saying so on stderr, exit 0),
# and no data directory is needed or touched. Refusals exit 1 as in a restore.
set -eu
dir="${BACKUP_DIR:-/backups}"
data="${CHROMA_DATA:-/chroma-data}"
choose="${CHROMA_CHOOSE:-}"
fail() { echo "ChromaDB restore refused: $*" >&2; exit 1; }
keep() { echo "ChromaDB's data kept as it is: $*; re-process documents whose vectors are missing" >&2; exit 0; }
if [ "$choose" = 1 ]; then
  names="$(cat)"
  from="the listing"
else
  [ -d "$data" ] || fail "no ChromaDB data directory at $data"
  names="$(ls -1 "$dir" || true)"
  from="$dir"
fi
# The time parts of the backups of a kind (names sort by time).
stamps() { printf '%s\n' "$names" | sed -n "s/^$1-\([0-9]\{8\}T[0-9]\{6\}Z\)\.$2\$/\1/p" | sort; }

archives="$(stamps chroma 'tar\.gz')"
[ -n "$archives" ] || keep "no chroma-*.tar.gz in $from"
if [ "${TARGET_SET:-}" = 1 ]; then
  if [ -n "${TARGET_EPOCH:-}" ]; then
    at="$(date -u -d "@$TARGET_EPOCH" +%Y%m%dT%H%M%SZ)"
    stamp="$(echo "$archives" | awk -v at="$at" '$0 <= at' | tail -n 1)"
  else
    stamp="$(echo "$archives" | tail -n 1)"
  fi
  [ -n "$stamp" ] || keep "no ChromaDB archive taken at or before the target"
else
  want="${BACKUP_FILE:-latest}"
  dumps="$(stamps postgres dump)"
  if [ "$want" = latest ]; then
    dump="$(echo "$dumps" | tail -n 1)"
  else
    dump="$(echo "$want" | sed -n 's/^postgres-\([0-9]\{8\}T[0-9]\{6\}Z\)\.dump$/\1/p')"
  fi
  [ -n "$dump" ] || fail "no dump to match (BACKUP_FILE=$want)"
  next="$(echo "$dumps" | awk -v d="$dump" '$0 > d' | head -n 1)"
  stamp="$(echo "$archives" | awk -v d="$dump" -v n="$next" '$0 >= d && (n == "" || $0 < n)' | head -n 1)"
  [ -n "$stamp" ] || stamp="$(echo "$archives" | awk -v d="$dump" '$0 < d' | tail -n 1)"
  [ -n "$stamp" ] || keep "no ChromaDB archive taken with or before postgres-$dump.dump"
fi
name="chroma-$stamp.tar.gz"
if [ "$choose" = 1 ]; then echo "$name"; exit 0; fi
[ -f "$dir/$name.sha256" ] || fail "$name.sha256 is missing: the backup did not complete"
(cd "$dir" && sha256sum -c "$name.sha256" >/dev/null 2>&1) \
  || fail "$name does not match its checksum: the file is corrupt or truncated"

partial="$data/.restore.partial"
rm -rf "$partial"
mkdir "$partial"
tar -C "$partial" -xzf "$dir/$name" || { rm -rf "$partial"; fail "$name could not be unpacked"; }
rm -rf "$data/.before-restore"
mkdir "$data/.before-restore"
find "$data" -mindepth 1 -maxdepth 1 ! -name .before-restore ! -name .restore.partial \
  -exec mv {} "$data/.before-restore/" \;
find "$partial" -mindepth 1 -maxdepth 1 -exec mv {} "$data/" \;
rmdir "$partial"
sync
echo "ChromaDB restored from $dir/$name (the data before it is in $data/.before-restore)"
