# shellcheck shell=bash
# Helpers of the image recipes (*/recipe.sh), sourced by build.sh; part of every image's cache key.
release_bin() { # release_bin NAME: the release binary, built once per run when not given
  local dir="${OYL_RELEASE_DIR:-$TARGET_DIR/release}"
  if [ -z "${OYL_RELEASE_DIR:-}" ] && [ -z "${_cargo_done:-}" ]; then
    (cd "$REPO_ROOT" && nice -n 15 cargo build --release --locked -p oyl-operator -p oyl-server >&2)
    _cargo_done=1
  fi
  [ -x "$dir/$1" ] || { echo "no $dir/$1" >&2; return 1; }
  echo "$dir/$1"
}

next_bin() { # next_bin: the API binary of a "newer release", one more migration (feature
  # upgrade-test-migration), built once per run beside the release binaries when not given
  local next="${OYL_RELEASE_DIR:-$TARGET_DIR/release}/next/oyl-server"
  if [ -z "${OYL_RELEASE_DIR:-}" ] && [ -z "${_next_done:-}" ]; then
    # The same packages as release_bin's build (the same feature unification, so only
    # oyl-server is compiled again), then that build again to put the plain binary back.
    (cd "$REPO_ROOT" && nice -n 15 cargo build --release --locked -p oyl-operator -p oyl-server \
      --features oyl-server/upgrade-test-migration >&2)
    install -D -m 0755 "$TARGET_DIR/release/oyl-server" "$next"
    _cargo_done=""
    release_bin oyl-server >/dev/null
    _next_done=1
  fi
  [ -x "$next" ] || { echo "no $next" >&2; return 1; }
  echo "$next"
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

