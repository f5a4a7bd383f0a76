#!/bin/sh
# Fetches the dump a restore asks for straight from the S3-compatible bucket that backup-s3.sh
# fills (spec.restore.source: S3), so no backup volume is needed: $BACKUP_FILE (a name, or
# `latest`: the newest postgres-*.dump by the bucket's own listing) and its checksum are
# downloaded into $BACKUP_DIR, where restore.sh then checks and restores them.
#   S3_BUCKET, S3_PREFIX, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or *_FILE: the mounted Secret,
#   as the operator runs this), optional S3_ENDPOINT_URL, AWS_DEFAULT_REGION, BACKUP_DIR
#   (default /backups), BACKUP_FILE (default latest).
# With PITR=1 (a point-in-time restore from the bucket, spec.restore.targetTime with source S3)
# it fetches instead what restore-pitr.sh replays, laid out as base-backup.sh and wal-archive.sh
# wrote it: every base backup's `info`, the base backup restore-pitr.sh will choose (the newest
# that ended at or before TARGET_EPOCH, seconds since the epoch; unset: the newest), and the
# archived WAL from that backup's first segment on, with every timeline history file. Refusals
# (a target before every base backup) are restore-pitr.sh's, from the same `info` files.
# With CHROMA_CHOICE (the text of restore-chroma.sh: the operator sets it when the restore brings
# the managed ChromaDB's data back too) it then fetches the ChromaDB archive that goes with what
# PostgreSQL is restored to, and its checksum: restore-chroma.sh itself chooses it (CHROMA_CHOOSE=1)
# from the names directly under the prefix, by the dump fetched (BACKUP_FILE) or, with PITR=1, by
# TARGET_EPOCH (only when a base backup was chosen). With that one archive beside the dump (or the
# base backup), restore-chroma.sh over $BACKUP_DIR then restores exactly it. None goes with the
# target: none is fetched, and ChromaDB's data is kept as it is.
set -eu
if [ -n "${AWS_ACCESS_KEY_ID_FILE:-}" ]; then AWS_ACCESS_KEY_ID="$(cat "$AWS_ACCESS_KEY_ID_FILE")"; export AWS_ACCESS_KEY_ID; fi
if [ -n "${AWS_SECRET_ACCESS_KEY_FILE:-}" ]; then AWS_SECRET_ACCESS_KEY="$(cat "$AWS_SECRET_ACCESS_KEY_FILE")"; export AWS_SECRET_ACCESS_KEY; fi
: "${S3_BUCKET:?S3_BUCKET must be set}"
dir="${BACKUP_DIR:-/backups}"
want="${BACKUP_FILE:-latest}"
prefix="${S3_PREFIX:-}"
source="s3://$S3_BUCKET/${prefix:+$prefix/}"
fail() { echo "restore refused: $*" >&2; exit 1; }
set --
[ -n "${S3_ENDPOINT_URL:-}" ] && set -- --endpoint-url "$S3_ENDPOINT_URL"
# aws with the endpoint ("$@" is free for the copy's filters below).
s3() { if [ -n "${S3_ENDPOINT_URL:-}" ]; then aws --endpoint-url "$S3_ENDPOINT_URL" "$@"; else aws "$@"; fi; }
# With CHROMA_CHOICE: the ChromaDB archive restore-chroma.sh chooses (run with the choice's
# variables as arguments: BACKUP_FILE=... or TARGET_SET=1) from the names directly under the
# prefix, and its checksum, into $dir.
chroma() {
  [ -n "${CHROMA_CHOICE:-}" ] || return 0
  listing="$(s3 s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${prefix:+$prefix/}" \
    --delimiter / --query 'Contents[].Key' --output text)" || fail "$source could not be listed"
  archive="$(echo "$listing" | tr '\t' '\n' | sed 's|.*/||' \
    | env "$@" CHROMA_CHOOSE=1 sh -c "$CHROMA_CHOICE")" || fail "no ChromaDB archive could be chosen"
  if [ -z "$archive" ]; then
    echo "no ChromaDB archive in $source goes with it: none fetched (ChromaDB's data is kept)"
    return 0
  fi
  s3 s3 cp --only-show-errors "$source$archive.sha256" "$dir/$archive.sha256" \
    || fail "$source$archive.sha256 could not be fetched: the ChromaDB archive is incomplete"
  s3 s3 cp --only-show-errors "$source$archive" "$dir/$archive" \
    || fail "$source$archive could not be fetched"
  echo "fetched $source$archive ($(wc -c < "$dir/$archive") bytes) into $dir"
}

if [ -n "${PITR:-}" ]; then
  # The keys under the prefix's $key (the aws CLI pages through the listing).
  keys() {
    s3 s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${prefix:+$prefix/}$key" \
      --query 'Contents[].Key' --output text | tr '\t' '\n' | grep -v '^None$' || true
  }
  key=base/
  chosen=""
  for k in $(keys | grep -E '/?base/[0-9]{8}T[0-9]{6}Z/info$' | sort -r); do
    ts="${k%/info}"; ts="${ts##*/}"
    mkdir -p "$dir/base/$ts"
    s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$k" "$dir/base/$ts/info" \
      || fail "s3://$S3_BUCKET/$k could not be fetched"
    end="$(sed -n 's/^end_epoch=//p' "$dir/base/$ts/info")"
    if [ -z "$chosen" ] && [ -n "$end" ] && { [ -z "${TARGET_EPOCH:-}" ] || [ "$end" -le "$TARGET_EPOCH" ]; }; then
      chosen="$ts"
    fi
  done
  [ -n "$chosen" ] || { echo "no base backup in ${source}base/ ends at or before the target"; exit 0; }
  s3 s3 cp --only-show-errors "${source}base/$chosen/base.tar.gz" "$dir/base/$chosen/base.tar.gz" \
    || fail "${source}base/$chosen/base.tar.gz could not be fetched"
  first="$(sed -n 's/^wal_start=//p' "$dir/base/$chosen/info")"
  # The WAL from the backup's first segment on (names compare by their last 16 digits, whatever
  # the timeline, as base-backup.sh prunes), and every timeline history file.
  key=wal/
  names="$(keys | sed 's|.*/||' | awk -v first="$first" '
    /^[0-9A-F]+\.history\.gz$/ { print; next }
    /^[0-9A-F]+(\.[0-9A-F]+\.backup)?\.gz$/ && index($0, ".") == 25 {
      if (substr($0, 9, 16) "" >= substr(first, 9, 16) "") print
    }')"
  set -- --exclude '*'
  n=0
  for name in $names; do
    set -- "$@" --include "$name"
    n=$((n + 1))
  done
  mkdir -p "$dir/wal"
  s3 s3 cp --only-show-errors --recursive "${source}wal/" "$dir/wal/" "$@" \
    || fail "${source}wal/ could not be fetched"
  echo "fetched base backup $chosen and $n WAL files from $source into $dir"
  chroma TARGET_SET=1
  exit 0
fi

if [ "$want" = latest ]; then
  # The bucket's own listing of the objects directly under the prefix ("None" when empty).
  keys="$(aws "$@" s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${prefix:+$prefix/}" \
    --delimiter / --query 'Contents[].Key' --output text)"
  want="$(for key in $keys; do
    name="${key##*/}"
    case "$name" in postgres-*.dump) echo "$name" ;; esac
  done | sort | tail -n 1)"
  [ -n "$want" ] || fail "no postgres-*.dump in $source"
fi
case "$want" in */*|.*) fail "BACKUP_FILE must be a file name, not a path: $want" ;; esac
aws "$@" s3 cp --only-show-errors "$source$want.sha256" "$dir/$want.sha256" \
  || fail "$source$want.sha256 could not be fetched: no such backup, or it did not complete"
aws "$@" s3 cp --only-show-errors "$source$want" "$dir/$want" || fail "$source$want could not be fetched"
echo "fetched $source$want ($(wc -c < "$dir/$want") bytes) into $dir"
chroma TARGET_SET= BACKUP_FILE="$want"
