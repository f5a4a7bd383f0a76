#!/usr/bin/env bash
# Builds the images the real node runs, with no container daemon and no registry, and optionally
# imports them into a containerd:
#   pause         the pod sandbox (a static C program; stands in for registry.k8s.io/pause)
#   postgres      stands in for postgres:17-alpine   (Debian's PostgreSQL 15; postgres/README.md)
#   redis         stands in for redis:7.4-alpine     (Debian's Redis 7.0;     redis/README.md)
#   chroma        stands in for chromadb/chroma      (PyPI's chromadb wheel;  chroma/README.md)
#   oyl-operator  the operator image, from the release binary (operator/Dockerfile's layout)
#   oyl-server    the API image, from the release binary (server/Dockerfile's layout)
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
[ ${#names[@]} -gt 0 ] || names=(pause postgres redis chroma oyl-operator oyl-server)
[ "$(id -u)" -eq 0 ] || { echo "build.sh needs root (mmdebstrap, file ownership in layers)" >&2; exit 1; }
OUT="$OYL_CACHE/images"
mkdir -p "$OUT"
SUITE=bookworm
MIRRORS=("deb http://deb.debian.org/debian $SUITE main" "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main")
CHROMA_VERSION=1.5.9

# The references the tests use (imagePullPolicy: Never / IfNotPresent).
ref() {
  case "$1" in
    pause) echo "localhost/oyl-test/pause:3.10" ;;
    postgres) echo "localhost/oyl-test/postgres:15" ;;
    redis) echo "localhost/oyl-test/redis:7.0" ;;
    chroma) echo "localhost/oyl-test/chroma:$CHROMA_VERSION" ;;
    oyl-operator) echo "localhost/oyl/oyl-operator:dev" ;;
    oyl-server) echo "localhost/oyl/oyl-server:dev" ;;
    *) echo "unknown image: $1" >&2; return 1 ;;
  esac
}

release_bin() { # release_bin NAME: the release binary, built once per run when not given
  local dir="${OYL_RELEASE_DIR:-$TARGET_DIR/release}"
  if [ -z "${OYL_RELEASE_DIR:-}" ] && [ -z "${_cargo_done:-}" ]; then
    (cd "$REPO_ROOT" && nice -n 15 cargo build --release --locked -p oyl-operator -p oyl-server >&2)
    _cargo_done=1
  fi
  [ -x "$dir/$1" ] || { echo "no $dir/$1" >&2; return 1; }
  echo "$dir/$1"
}

key() { # key NAME: the hash of everything the image is built from
  {
    sha256sum "$here/build.sh"
    (cd "$here/$1" && find . -type f | LC_ALL=C sort | xargs -r sha256sum)
    case "$1" in
      oyl-operator|oyl-server) sha256sum "$(release_bin "$1")" ;;
    esac
  } | sha256sum | cut -c1-16
}

debian_rootfs() { # debian_rootfs DIR PACKAGES [mmdebstrap options...]: a minimal Debian
  local dir=$1 pkgs=$2; shift 2
  nice -n 15 mmdebstrap --quiet --mode=root --variant=minbase --format=directory \
    --include="$pkgs" \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    "$@" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/log/*' \
    "$SUITE" "$dir" "${MIRRORS[@]}" >&2
}

# A customize hook giving user NAME the upstream image's ids: packages create their users with
# ids of their own (and adduser --system refuses an existing user below 100, such as 70).
user_hook() { # user_hook NAME UID GID HOME
  printf 'if chroot "$1" id -u %s >/dev/null 2>&1; then chroot "$1" groupmod -g %s %s && chroot "$1" usermod -u %s -g %s %s; else chroot "$1" groupadd -g %s %s && chroot "$1" useradd -u %s -g %s -d %s -s /bin/sh -M %s; fi' \
    "$1" "$3" "$1" "$2" "$3" "$1" "$3" "$1" "$2" "$3" "$4" "$1"
}

# Only what a dynamically linked binary needs: itself, its libraries (ldd), the loader,
# /etc/passwd and /etc/group naming nonroot 65532, CA certificates, /tmp: distroless's layout.
binary_rootfs() { # binary_rootfs DIR BINARY
  local dir=$1 bin=$2 lib
  install -D -m 0755 "$bin" "$dir/usr/local/bin/$(basename "$bin")"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*' | sort -u); do
    install -D -m 0644 "$(readlink -f "$lib")" "$dir$lib"
  done
  chmod 0755 "$dir"/lib64/ld-linux-* 2>/dev/null || true
  mkdir -p "$dir/etc/ssl/certs" "$dir/tmp" "$dir/home/nonroot"
  chmod 1777 "$dir/tmp"
  chown 65532:65532 "$dir/home/nonroot"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$dir/etc/group"
  # Debian's Mozilla bundle only (the host's may hold local additions).
  cat /usr/share/ca-certificates/mozilla/*.crt > "$dir/etc/ssl/certs/ca-certificates.crt"
}

oci_archive() { # oci_archive ROOTFS OUT.tar TAG [umoci config options...]
  local rootfs=$1 out=$2 tag=$3; shift 3
  local w; w="$(mktemp -d)"
  umoci init --layout "$w/layout"
  umoci new --image "$w/layout:$tag"
  umoci unpack --image "$w/layout:$tag" "$w/bundle" >/dev/null
  cp -a "$rootfs"/. "$w/bundle/rootfs/"
  umoci repack --image "$w/layout:$tag" "$w/bundle"
  umoci config --image "$w/layout:$tag" --author="oyl tests/images" \
    --created="1970-01-01T00:00:00Z" --os=linux --architecture=amd64 "$@"
  umoci gc --layout "$w/layout"
  tar -C "$w/layout" -cf "$out.partial" .
  mv "$out.partial" "$out"
  rm -rf "$w"
}

build_one() { # build_one NAME ROOTFS OUT: fills ROOTFS, then packs it
  local name=$1 r=$2 out=$3 tag="${4:-latest}"
  local pg=/usr/lib/postgresql/15/bin path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  case "$name" in
    pause)
      mkdir -p "$r"
      gcc -static -Os -s -o "$r/pause" "$here/pause/pause.c"
      oci_archive "$r" "$out" "$tag" --config.user=65535:65535 --config.entrypoint=/pause ;;
    postgres)
      debian_rootfs "$r" postgresql-15 \
        --customize-hook="$(user_hook postgres 70 70 /var/lib/postgresql)" \
        --customize-hook='rm -rf "$1"/var/lib/postgresql/15 "$1"/etc/postgresql/15' \
        --customize-hook="sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" \"\$1\"/usr/share/postgresql/15/postgresql.conf.sample" \
        --customize-hook='mkdir -p "$1"/docker-entrypoint-initdb.d "$1"/var/lib/postgresql/data "$1"/var/run/postgresql && chown 70:70 "$1"/var/lib/postgresql "$1"/var/lib/postgresql/data "$1"/var/run/postgresql && chmod 3777 "$1"/var/run/postgresql && chmod 700 "$1"/var/lib/postgresql/data'
      install -m 0755 "$here/postgres/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
      oci_archive "$r" "$out" "$tag" --config.user=70:70 \
        --config.env="PATH=$pg:$path" --config.env=LANG=C.UTF-8 \
        --config.env=PGDATA=/var/lib/postgresql/data \
        --config.entrypoint=docker-entrypoint.sh --config.cmd=postgres \
        --config.exposedports=5432/tcp --config.volume=/var/lib/postgresql/data \
        --config.stopsignal=SIGINT ;;
    redis)
      debian_rootfs "$r" redis-server,redis-tools \
        --customize-hook="$(user_hook redis 999 999 /var/lib/redis)" \
        --customize-hook='mkdir -p "$1"/data && chown 999:999 "$1"/data'
      oci_archive "$r" "$out" "$tag" --config.user=999:999 --config.env="PATH=$path" \
        --config.workingdir=/data --config.cmd=redis-server \
        --config.exposedports=6379/tcp --config.volume=/data ;;
    chroma)
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
        --config.exposedports=8000/tcp --config.volume=/data ;;
    oyl-operator)
      binary_rootfs "$r" "$(release_bin oyl-operator)"
      oci_archive "$r" "$out" "$tag" --config.user=65532:65532 --config.env="PATH=$path" \
        --config.env=SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        --config.entrypoint=oyl-operator --config.cmd=run --config.exposedports=8080/tcp ;;
    oyl-server)
      binary_rootfs "$r" "$(release_bin oyl-server)"
      install -d -o 65532 -g 65532 "$r/var/lib/oyl" "$r/var/lib/oyl/uploads"
      oci_archive "$r" "$out" "$tag" --config.user=65532:65532 --config.env="PATH=$path" \
        --config.env=SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        --config.env=HOST=0.0.0.0 --config.env=PORT=8000 --config.env=LOG_FORMAT=json \
        --config.env=UPLOAD_DIR=/var/lib/oyl/uploads --config.workingdir=/var/lib/oyl \
        --config.entrypoint=oyl-server --config.cmd=serve --config.exposedports=8000/tcp ;;
  esac
}

for name in "${names[@]}"; do
  reference="$(ref "$name")"
  out="$OUT/$name-$(key "$name").tar"
  if [ -f "$out" ]; then
    echo "$name: cached ($out)" >&2
  else
    t=$(date +%s); echo "$name: building" >&2
    rootfs="$(mktemp -d "$OUT/.rootfs-$name.XXXXXX")"
    rm -rf "$rootfs"   # mmdebstrap wants a missing or empty directory
    build_one "$name" "$rootfs" "$out" "${reference##*:}"
    rm -rf "$rootfs"
    # Older archives of this image are superseded.
    find "$OUT" -maxdepth 1 -name "$name-*.tar" ! -path "$out" -delete
    echo "$name: built in $(( $(date +%s) - t ))s ($(du -h "$out" | cut -f1))" >&2
  fi
  if [ -n "$sock" ]; then
    t=$(date +%s)
    ctr --address "$sock" -n k8s.io images import --base-name "${reference%:*}" "$out" >/dev/null
    ctr --address "$sock" -n k8s.io images ls -q | grep -qxF "$reference" \
      || { echo "$name: $reference missing after import" >&2; exit 1; }
    echo "$name: imported as $reference in $(( $(date +%s) - t ))s" >&2
  fi
  echo "$name=$reference"
done
