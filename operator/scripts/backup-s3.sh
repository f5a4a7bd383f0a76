#!/bin/sh
# Copies the backup volume to S3-compatible object storage: every complete backup and its
# checksum (never the hidden .partial files). It never deletes an object because the volume lacks
# it (a new, emptied or replaced volume must not wipe the off-site copies): the bucket has its own
# retention, by its own listing, keeping the newest $BACKUP_RETENTION backups of each kind
# (and, with $BACKUP_RETENTION_DAYS, none older than that many days but the newest of each kind)
# (PostgreSQL dumps, Redis RDB files, ChromaDB archives), each with its checksum.
# Runs after the dump containers (they are init containers when S3 is configured).
#   S3_BUCKET, S3_PREFIX, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or *_FILE: the mounted Secret,
#   as the operator runs this), optional S3_ENDPOINT_URL, AWS_DEFAULT_REGION, BACKUP_RETENTION
#   (default 7), BACKUP_RETENTION_DAYS (unset: no limit by age), BASE_BACKUP_RETENTION (with WAL
#   archiving: the bucket keeps base backups and WAL as base-backup.sh keeps them on the volume).
set -eu
# The keys from their files into the environment of this script's aws commands, never an argv.
if [ -n "${AWS_ACCESS_KEY_ID_FILE:-}" ]; then AWS_ACCESS_KEY_ID="$(cat "$AWS_ACCESS_KEY_ID_FILE")"; export AWS_ACCESS_KEY_ID; fi
if [ -n "${AWS_SECRET_ACCESS_KEY_FILE:-}" ]; then AWS_SECRET_ACCESS_KEY="$(cat "$AWS_SECRET_ACCESS_KEY_FILE")"; export AWS_SECRET_ACCESS_KEY; fi
: "${S3_BUCKET:?S3_BUCKET must be set}"
dir="${BACKUP_DIR:-/backups}"
keep="${BACKUP_RETENTION:-7}"
case "$keep" in ''|*[!0-9]*|0) echo "BACKUP_RETENTION must be a positive integer, not '$keep'" >&2; exit 2 ;; esac
days="${BACKUP_RETENTION_DAYS:-}"
case "$days" in '') ;; *[!0-9]*|0*) echo "BACKUP_RETENTION_DAYS must be a positive integer, not '$days'" >&2; exit 2 ;; esac
cut=""; [ -z "$days" ] || cut="$(date -u -d "@$(($(date -u +%s) - days * 86400))" +%Y%m%dT%H%M%SZ)"
prefix="${S3_PREFIX:-}"
target="s3://$S3_BUCKET/${prefix:+$prefix/}"
set --
[ -n "${S3_ENDPOINT_URL:-}" ] && set -- --endpoint-url "$S3_ENDPOINT_URL"

aws "$@" s3 sync --only-show-errors "$dir/" "$target" --exclude ".*" --exclude "*/.*" --exclude "lost+found/*"
echo "uploaded $dir to $target: $(ls -1 "$dir" | grep -vc '^\.' || true) local objects"

# The bucket's retention, by the bucket's own listing of the objects directly under the prefix
# (s3api succeeds on an empty prefix, printing "None"; a failure stops the script). Names sort by
# time within a kind.
keys="$(aws "$@" s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${prefix:+$prefix/}" \
  --delimiter / --query 'Contents[].Key' --output text)"
for kind in 'postgres-*.dump' 'redis-*.rdb' 'chroma-*.tar.gz'; do
  for key in $keys; do
    name="${key##*/}"
    case "$name" in $kind) echo "$name" ;; esac
  done | sort -r | awk -v keep="$keep" -v cut="$cut" '{ t = $0; sub(/.*-/, "", t) } NR > keep || (NR > 1 && t < cut)' | while read -r old; do
    aws "$@" s3 rm --only-show-errors "$target$old"
    aws "$@" s3 rm --only-show-errors "$target$old.sha256"
    echo "pruned from the bucket: $target$old"
  done
done

# Base backups and WAL (with WAL archiving), as base-backup.sh prunes the volume: the newest
# $BASE_BACKUP_RETENTION base backups and, with $BACKUP_RETENTION_DAYS, none older than that but
# the newest of those (every point of the window stays recoverable), and the WAL from the oldest
# kept one's first segment on (timeline history files are kept). By the bucket's own listing.
bases="${BASE_BACKUP_RETENTION:-}"
case "$bases" in '') exit 0 ;; *[!0-9]*|0) echo "BASE_BACKUP_RETENTION must be a positive integer, not '$bases'" >&2; exit 2 ;; esac
under() { # the keys under the prefix's $1, one per line
  aws "$@" s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${prefix:+$prefix/}$under" \
    --query 'Contents[].Key' --output text | tr '\t' '\n' | grep -v '^None$' || true
}
under=base/
backups="$(under "$@" | sed -n 's|^\(.*/\)\{0,1\}base/\([0-9]\{8\}T[0-9]\{6\}Z\)/info$|\2|p' | sort)"
cutb=""; [ -z "$days" ] || cutb="$(date -u -d "@$(($(date -u +%s) - days * 86400))" +%Y%m%dT%H%M%SZ)"
for old in $(printf '%s\n' $backups | sort -r | awk -v keep="$bases" -v cut="$cutb" 'NF && (NR > keep || ($0 < cut && older++))'); do
  aws "$@" s3 rm --only-show-errors --recursive "${target}base/$old/"
  echo "pruned from the bucket: ${target}base/$old/"
  backups="$(printf '%s\n' $backups | grep -v "^$old\$" || true)"
done
oldest="$(printf '%s\n' $backups | grep . | head -n 1 || true)"
[ -n "$oldest" ] || exit 0
first="$(aws "$@" s3 cp --only-show-errors "${target}base/$oldest/info" - | sed -n 's/^wal_start=//p')"
[ -n "$first" ] || exit 0
under=wal/
names="$(under "$@" | awk -v first="$first" '{ name = $0; sub(/.*\//, "", name) }
    name ~ /^[0-9A-F]+(\.[0-9A-F]+\.backup)?\.gz$/ && index(name, ".") == 25 {
      if (substr(name, 9, 16) "" < substr(first, 9, 16) "") print name
    }')"
[ -n "$names" ] || exit 0
# One removal with a filter per file ("$@" then carries the filters, so the endpoint goes first).
endpoint="${S3_ENDPOINT_URL:-}"
set -- --exclude '*'
n=0
for name in $names; do
  set -- "$@" --include "$name"
  n=$((n + 1))
done
if [ -n "$endpoint" ]; then set -- --endpoint-url "$endpoint" s3 rm --only-show-errors --recursive "${target}wal/" "$@"
else set -- s3 rm --only-show-errors --recursive "${target}wal/" "$@"; fi
aws "$@"
echo "pruned from the bucket: $n WAL files older than $first, the oldest kept base backup's first"
