# shellcheck shell=bash
# The chroma image's recipe, sourced by ../build.sh: recipe ROOTFS OUT.tar TAG fills ROOTFS and
# packs it (../lib.sh has the helpers). Everything in this folder but *.md is part of the
# image's cache key.
recipe() {
  local r=$1 out=$2 tag=$3
  local path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  debian_rootfs "$r" python3-minimal,libpython3.11-stdlib,ca-certificates \
    --customize-hook="$(user_hook chroma 1000 1000 /data)" \
    --customize-hook='mkdir -p "$1"/data && chown 1000:1000 "$1"/data'
  local wheels="$OUT/wheels"
  mkdir -p "$wheels" "$r/opt/chroma"
  ls "$wheels"/chromadb-"$CHROMA_VERSION"-*.whl >/dev/null 2>&1 || \
    python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
      --python-version 3.11 --implementation cp -d "$wheels" "chromadb==$CHROMA_VERSION" >&2
  python3 -m zipfile -e "$(ls "$wheels"/chromadb-"$CHROMA_VERSION"-*.whl | head -n1)" "$r/opt/chroma"
  install -m 0755 "$here/chroma/chroma" "$r/usr/local/bin/chroma"
  oci_archive "$r" "$out" "$tag" --config.user=1000:1000 --config.env="PATH=$path" \
    --config.env=HOME=/tmp --config.env=ANONYMIZED_TELEMETRY=FALSE \
    --config.cmd=chroma --config.cmd=run --config.cmd=--host --config.cmd=0.0.0.0 \
    --config.cmd=--port --config.cmd=8000 --config.cmd=--path --config.cmd=/data \
    --config.exposedports=8000/tcp --config.volume=/data
}
