# shellcheck shell=bash
# The redis image's recipe, sourced by ../build.sh: recipe ROOTFS OUT.tar TAG fills ROOTFS and
# packs it (../lib.sh has the helpers). Everything in this folder but *.md is part of the
# image's cache key.
recipe() {
  local r=$1 out=$2 tag=$3
  local path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  debian_rootfs "$r" redis-server,redis-tools \
    --customize-hook="$(user_hook redis 999 999 /var/lib/redis)" \
    --customize-hook='mkdir -p "$1"/data && chown 999:999 "$1"/data'
  oci_archive "$r" "$out" "$tag" --config.user=999:999 --config.env="PATH=$path" \
    --config.workingdir=/data --config.cmd=redis-server \
    --config.exposedports=6379/tcp --config.volume=/data
}
