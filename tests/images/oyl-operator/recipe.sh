# shellcheck shell=bash
# The oyl-operator image's recipe, sourced by ../build.sh: recipe ROOTFS OUT.tar TAG fills ROOTFS and
# packs it (../lib.sh has the helpers). Everything in this folder but *.md is part of the
# image's cache key.
recipe() {
  local r=$1 out=$2 tag=$3
  local path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  binary_rootfs "$r" "$(release_bin oyl-operator)"
  oci_archive "$r" "$out" "$tag" --config.user=65532:65532 --config.env="PATH=$path" \
    --config.env=SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.entrypoint=oyl-operator --config.cmd=run --config.exposedports=8080/tcp
}
