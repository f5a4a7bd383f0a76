# shellcheck shell=bash
# The postgres image's recipe, sourced by ../build.sh: recipe ROOTFS OUT.tar TAG fills ROOTFS and
# packs it (../lib.sh has the helpers). Everything in this folder but *.md is part of the
# image's cache key.
recipe() {
  local r=$1 out=$2 tag=$3
  local pg=/usr/lib/postgresql/15/bin path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  debian_rootfs "$r" postgresql-15 \
    --customize-hook="$(user_hook postgres 70 70 /var/lib/postgresql)" \
    --customize-hook='rm -rf "$1"/var/lib/postgresql/15 "$1"/etc/postgresql/15' \
    --customize-hook="sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" \"\$1\"/usr/share/postgresql/15/postgresql.conf.sample" \
    --customize-hook='mkdir -p "$1"/docker-entrypoint-initdb.d "$1"/var/lib/postgresql/data && chown 70:70 "$1"/var/lib/postgresql "$1"/var/lib/postgresql/data && chmod 700 "$1"/var/lib/postgresql/data'
  # /var/run is a symlink to the absolute /run: never follow it from outside the rootfs.
  install -d -o 70 -g 70 -m 3777 "$r/run/postgresql"
  install -m 0755 "$here/postgres/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
  oci_archive "$r" "$out" "$tag" --config.user=70:70 \
    --config.env="PATH=$pg:$path" --config.env=LANG=C.UTF-8 \
    --config.env=PGDATA=/var/lib/postgresql/data \
    --config.entrypoint=docker-entrypoint.sh --config.cmd=postgres \
    --config.exposedports=5432/tcp --config.volume=/var/lib/postgresql/data \
    --config.stopsignal=SIGINT
}
