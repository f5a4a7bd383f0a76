#!/bin/sh
# Copies the backup volume to S3-compatible object storage: every complete backup and its
# checksum (never the hidden .partial files), deleting objects whose backups retention already
# removed from the volume, so the bucket keeps exactly what the volume keeps.
# Runs after the dump containers (they are init containers when S3 is configured).
#   S3_BUCKET, S3_PREFIX, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, optional S3_ENDPOINT_URL,
#   AWS_DEFAULT_REGION.
set -eu
: "${S3_BUCKET:?S3_BUCKET must be set}"
dir="${BACKUP_DIR:-/backups}"
prefix="${S3_PREFIX:-}"
target="s3://$S3_BUCKET/${prefix:+$prefix/}"
set -- --only-show-errors
[ -n "${S3_ENDPOINT_URL:-}" ] && set -- "$@" --endpoint-url "$S3_ENDPOINT_URL"

aws "$@" s3 sync "$dir/" "$target" --delete --exclude ".*" --exclude "lost+found/*"
echo "synced $dir to $target: $(ls -1 "$dir" | grep -vc '^\.' || true) objects"
