#!/usr/bin/env bash
# Builds the images the real node runs, with no container daemon and no registry, and optionally
# imports them into a containerd:
#   pause         the pod sandbox (a static C program; stands in for registry.k8s.io/pause)
#   postgres      stands in for postgres:17-alpine   (Debian's PostgreSQL 15; postgres/README.md)
#   redis         stands in for redis:7.4-alpine     (Debian's Redis 7.0;     redis/README.md)
#   chroma        stands in for chromadb/chroma      (PyPI's chromadb wheel;  chroma/README.md)
#   oyl-operator  the operator image, from the release binary (operator/Dockerfile's layout)
#   oyl-server    the API image, from the release binary (server/Dockerfile's layout)
#   oyl-server-next  the same with one more migration: "a newer release" for the upgrade test
#
#   tests/images/build.sh [--import CONTAINERD_SOCKET] [NAME...]
#
# Root file systems come from Debian (mmdebstrap) and PyPI, layouts from umoci; each image is an
# OCI archive cached in $OYL_CACHE/images/ under the hash of everything it is built from (this
# script, its recipe folder, and for the two Oyl images the binary), so an unchanged image is
# never rebuilt. The Oyl binaries are built with `cargo build --release` unless
# OYL_RELEASE_DIR names a folder that holds them. Prints one line per image: NAME=REFERENCE.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../cluster/lib.sh"
sock=""
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --import) sock="$2"; shift 2 ;;
    -*) echo "usage: build.sh [--import CONTAINERD_SOCKET] [NAME...]" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(pause postgres redis chroma oyl-operator oyl-server oyl-server-next)
[ "$(id -u)" -eq 0 ] || { echo "build.sh needs root (mmdebstrap, file ownership in layers)" >&2; exit 1; }
OUT="$OYL_CACHE/images"
mkdir -p "$OUT"
SUITE=bookworm
MIRRORS=("deb http://deb.debian.org/debian $SUITE main" "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main")
# shellcheck source=chroma/version.env
. "$here/chroma/version.env"

# The references the tests use (imagePullPolicy: Never / IfNotPresent).
ref() {
  case "$1" in
    pause) echo "localhost/oyl-test/pause:3.10" ;;
    postgres) echo "localhost/oyl-test/postgres:15" ;;
    redis) echo "localhost/oyl-test/redis:7.0" ;;
    chroma) echo "localhost/oyl-test/chroma:$CHROMA_VERSION" ;;
    oyl-operator) echo "localhost/oyl/oyl-operator:dev" ;;
    oyl-server) echo "localhost/oyl/oyl-server:dev" ;;
    oyl-server-next) echo "localhost/oyl/oyl-server:next" ;;
    *) echo "unknown image: $1" >&2; return 1 ;;
  esac
}

. "$here/lib.sh"
key() { # key NAME: the hash of everything the image is built from (contents, not paths)
  {
    sha256sum < "$here/lib.sh"
    (cd "$here/$1" && find . -type f ! -name '*.md' | LC_ALL=C sort | xargs -r sha256sum)
    case "$1" in
      oyl-operator|oyl-server) sha256sum < "$(release_bin "$1")" ;;
      oyl-server-next) sha256sum < "$(next_bin)" ;;
    esac
  } | sha256sum | cut -c1-16
}

# The Rust builds, once, here (the keys and recipes below run in subshells).
for name in "${names[@]}"; do
  case "$name" in
    oyl-operator|oyl-server) release_bin "$name" >/dev/null ;;
    oyl-server-next) next_bin >/dev/null ;;
  esac
done

for name in "${names[@]}"; do
  reference="$(ref "$name")"
  out="$OUT/$name-$(key "$name").tar"
  if [ -f "$out" ]; then
    echo "$name: cached ($out)" >&2
  else
    t=$(date +%s); echo "$name: building" >&2
    rootfs="$(mktemp -d "$OUT/.rootfs-$name.XXXXXX")"
    rm -rf "$rootfs"   # mmdebstrap wants a missing or empty directory
    (. "$here/$name/recipe.sh" && recipe "$rootfs" "$out" "${reference##*:}")
    rm -rf "$rootfs"
    # Older archives of this image are superseded.
    find "$OUT" -maxdepth 1 -name "$name-????????????????.tar" ! -path "$out" -delete
    echo "$name: built in $(( $(date +%s) - t ))s ($(du -h "$out" | cut -f1))" >&2
  fi
  if [ -n "$sock" ]; then
    t=$(date +%s)
    ctr --address "$sock" -n k8s.io images import --base-name "${reference%:*}" "$out" >/dev/null
    # (not `ctr ... | grep -q`: with pipefail, grep's early exit fails the pipeline)
    imported="$(ctr --address "$sock" -n k8s.io images ls -q)"
    grep -qxF "$reference" <<<"$imported" \
      || { echo "$name: $reference missing after import" >&2; exit 1; }
    echo "$name: imported as $reference in $(( $(date +%s) - t ))s" >&2
  fi
  echo "$name=$reference"
done
