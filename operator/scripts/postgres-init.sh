#!/bin/sh
# Run once by PostgreSQL's entrypoint, after initdb, from /docker-entrypoint-initdb.d (the operator
# mounts this file there from the platform's ConfigMap): creates the role the platform connects
# as, a login role that is not a superuser and cannot create roles or databases, and makes it the
# owner of the platform's database (so it owns the `public` schema and everything the migrations
# create). The superuser is the entrypoint's $POSTGRES_USER, whose password only this container
# reads. The role's password is read by psql from the mounted Secret file: it is in no argv and
# no environment.
#   OYL_DB_USER, POSTGRES_DB, OYL_DB_PASSWORD_FILE
# The entrypoint sources this file (it is not executable): a subshell keeps these options out of
# the entrypoint's shell, and its failure fails the entrypoint (which runs with `set -e`).
(
  set -eu
  : "${OYL_DB_USER:?OYL_DB_USER must be set}" "${OYL_DB_PASSWORD_FILE:?OYL_DB_PASSWORD_FILE must be set}"
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username="${POSTGRES_USER:-postgres}" --dbname=postgres \
    --set=role="$OYL_DB_USER" --set=db="${POSTGRES_DB:?POSTGRES_DB must be set}" <<'SQL'
\set password `cat "$OYL_DB_PASSWORD_FILE"`
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
ALTER DATABASE :"db" OWNER TO :"role";
SQL
  echo "created role $OYL_DB_USER, owner of database $POSTGRES_DB"
)
