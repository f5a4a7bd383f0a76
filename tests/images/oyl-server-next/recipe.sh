# shellcheck shell=bash
# The oyl-server-next image's recipe: oyl-server's, with next_bin's binary. Sourced by ../build.sh:
# recipe ROOTFS OUT.tar TAG fills ROOTFS and packs it (../lib.sh has the helpers). Everything in this folder but *.md is part of the
# image's cache key.
recipe() {
  local r=$1 out=$2 tag=$3
  local path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  binary_rootfs "$r" "$(next_bin)"
  install -d -o 65532 -g 65532 "$r/var/lib/oyl" "$r/var/lib/oyl/uploads"
  oci_archive "$r" "$out" "$tag" --config.user=65532:65532 --config.env="PATH=$path" \
    --config.env=SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.env=HOST=0.0.0.0 --config.env=PORT=8000 --config.env=LOG_FORMAT=json \
    --config.env=UPLOAD_DIR=/var/lib/oyl/uploads --config.workingdir=/var/lib/oyl \
    --config.entrypoint=oyl-server --config.cmd=serve --config.exposedports=8000/tcp
}
