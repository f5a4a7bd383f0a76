#!/bin/sh
# Snapshots Redis (rate-limit counters and cache) to /backups as an RDB file, fetched over the
# network with `redis-cli --rdb`. Same rules as backup.sh: fail loudly, final name only when
# complete, checksum beside it, keep the newest $BACKUP_RETENTION (and, with
# $BACKUP_RETENTION_DAYS, none older than that many days but the newest).
set -eu
# pipefail where the shell has it (busybox ash does; dash does not, so no pipeline below
# carries data that matters).
(set -o pipefail) 2>/dev/null && set -o pipefail
# From $REDIS_URL_FILE (the mounted Secret, as the operator runs this) or $REDIS_URL.
if [ -n "${REDIS_URL_FILE:-}" ]; then REDIS_URL="$(cat "$REDIS_URL_FILE")"; fi
: "${REDIS_URL:?REDIS_URL or REDIS_URL_FILE must be set}"
dir="${BACKUP_DIR:-/backups}"
keep="${BACKUP_RETENTION:-7}"
days="${BACKUP_RETENTION_DAYS:-}"
case "$days" in '') ;; *[!0-9]*|0*) echo "BACKUP_RETENTION_DAYS must be a positive integer, not '$days'" >&2; exit 2 ;; esac
cut=""; [ -z "$days" ] || cut="$(date -u -d "@$(($(date -u +%s) - days * 86400))" +%Y%m%dT%H%M%SZ)"
name="redis-$(date -u +%Y%m%dT%H%M%SZ).rdb"

# The password goes to redis-cli through REDISCLI_AUTH, never in its argv (visible to `ps`), and
# a URL with an empty user name (redis://:PASSWORD@host, as the operator writes it) must not
# become `AUTH "" PASSWORD`, which Redis refuses.
url="$REDIS_URL"
set --
case "$url" in
  *://*@*)
    scheme="${url%%://*}"
    rest="${url#*://}"
    userinfo="${rest%%@*}"
    case "$userinfo" in
      *:*) user="${userinfo%%:*}"; REDISCLI_AUTH="${userinfo#*:}"; export REDISCLI_AUTH ;;
      *) user="$userinfo" ;;
    esac
    [ -n "$user" ] && set -- --user "$user"
    url="$scheme://${rest#*@}"
    ;;
esac
redis-cli -u "$url" "$@" --no-auth-warning --rdb "$dir/.$name.partial" >/dev/null
sum="$(sha256sum "$dir/.$name.partial")"
printf '%s  %s\n' "${sum%% *}" "$name" > "$dir/.$name.sha256.partial"
mv "$dir/.$name.sha256.partial" "$dir/$name.sha256"
mv "$dir/.$name.partial" "$dir/$name"
echo "backup written: $dir/$name ($(wc -c < "$dir/$name") bytes)"

ls -1 "$dir"/redis-*.rdb | sort -r | awk -v keep="$keep" -v cut="$cut" '{ t = $0; sub(/.*-/, "", t) } NR > keep || (NR > 1 && t < cut)' | while read -r old; do
  rm -f "$old" "$old.sha256"
  echo "pruned: $old"
done
