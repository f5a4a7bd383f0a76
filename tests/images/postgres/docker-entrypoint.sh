#!/bin/sh
# The stand-in's entrypoint: the part of the official image's docker-entrypoint.sh the operator
# relies on. With an empty $PGDATA it runs initdb with $POSTGRES_USER as superuser and
# $POSTGRES_PASSWORD (or the contents of $POSTGRES_PASSWORD_FILE) as its password, admits password (scram-sha-256) connections from any
# address, creates $POSTGRES_DB, runs /docker-entrypoint-initdb.d/*.sh|*.sql, then execs the
# command (default `postgres`, listening on every address). It never runs as root: the official
# image would chown and drop to uid 70; the operator's pods already run as 70.
set -eu
case "${1:-}" in -*) set -- postgres "$@" ;; esac

if [ "${1:-}" = postgres ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "this stand-in does not run as root: run it as uid 70 (postgres)" >&2; exit 1
  fi
  : "${PGDATA:=/var/lib/postgresql/data}"
  export PGDATA
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  # As upstream's file_env: the password from a mounted Secret file; both set is an error.
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
      echo "error: both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set (but are exclusive)" >&2
      exit 1
    fi
    POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
  fi
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA" 2>/dev/null || true
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
      echo "Error: Database is uninitialized and superuser password is not specified." >&2
      echo "       Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)." >&2
      exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as upstream has it
    initdb --username="$user" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
    # A temporary server on the Unix socket only, as upstream, to create the database.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$db" != postgres ]; then
      psql -v ON_ERROR_STOP=1 --no-psqlrc --username="$user" --dbname=postgres \
        -c "CREATE DATABASE \"$db\"" >/dev/null
    fi
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh) echo "running $f"; . "$f" ;;
        *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc --username="$user" --dbname="$db" -f "$f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "PostgreSQL init process complete; ready for start up."
  fi
fi
exec "$@"
