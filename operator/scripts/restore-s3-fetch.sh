#!/bin/sh
# Fetches the dump a restore asks for straight from the S3-compatible bucket that backup-s3.sh
# fills (spec.restore.source: S3), so no backup volume is needed: $BACKUP_FILE (a name, or
# `latest`: the newest postgres-*.dump by the bucket's own listing) and its checksum are
# downloaded into $BACKUP_DIR, where restore.sh then checks and restores them.
#   S3_BUCKET, S3_PREFIX, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or *_FILE: the mounted Secret,
#   as the operator runs this), optional S3_ENDPOINT_URL, AWS_DEFAULT_REGION, BACKUP_DIR
#   (default /backups), BACKUP_FILE (default latest).
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
