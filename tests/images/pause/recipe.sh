# shellcheck shell=bash
# The pause image's recipe, sourced by ../build.sh: recipe ROOTFS OUT.tar TAG fills ROOTFS and
# packs it (../lib.sh has the helpers). Everything in this folder but *.md is part of the
# image's cache key.
recipe() {
  local r=$1 out=$2 tag=$3
  local path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  mkdir -p "$r"
  gcc -static -Os -s -o "$r/pause" "$here/pause/pause.c"
  oci_archive "$r" "$out" "$tag" --config.user=65535:65535 --config.entrypoint=/pause
}
