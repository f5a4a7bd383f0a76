#!/usr/bin/env bash
# A throwaway ChromaDB server for the server's test suite (no Docker, no network at run time).
#
#   eval "$(tests/services/chroma.sh | tail -n1)"   # sets TEST_CHROMA_URL
#   cargo test -p oyl-server                         # vectors now go to ChromaDB
#   tests/services/chroma-down.sh
#
# Installs the `chromadb` wheel from PyPI into a venv (with --no-deps: the server is the Rust
# frontend inside chromadb_rust_bindings; the Python client's ~500 MB of dependencies are not
# needed), starts it on 127.0.0.1:$OYL_TEST_CHROMA_PORT (default 28000) with data under
# $OYL_TEST_CHROMA_DIR, waits for the heartbeat, prints TEST_CHROMA_URL=... last. Idempotent.
# Needs python3 with venv (apt: python3-venv).
set -euo pipefail
PORT="${OYL_TEST_CHROMA_PORT:-28000}"
DIR="${OYL_TEST_CHROMA_DIR:-/tmp/oyl-test-chroma}"
VERSION="${OYL_TEST_CHROMA_VERSION:-1.5.9}"
URL="http://127.0.0.1:$PORT"
log() { echo "chroma.sh: $*" >&2; }

heartbeat() { python3 - "$URL" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/api/v2/heartbeat", timeout=2).read()
PY
}

mkdir -p "$DIR"
if ! python3 -c 'import venv' 2>/dev/null; then
  log "installing python3-venv from apt"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
  else sudo -n env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -qq && apt-get install -y -qq python3-venv' >&2; fi
fi
if [ ! -x "$DIR/venv/bin/python" ] || ! "$DIR/venv/bin/python" -c 'import chromadb_rust_bindings' 2>/dev/null; then
  log "installing chromadb==$VERSION (server bindings only) into $DIR/venv"
  python3 -m venv "$DIR/venv" >&2
  "$DIR/venv/bin/pip" install -q --disable-pip-version-check --no-deps "chromadb==$VERSION" >&2
fi

if heartbeat; then
  log "already running"
else
  log "starting on $URL"
  nohup "$DIR/venv/bin/python" -c \
    "import chromadb_rust_bindings as b; b.cli(['chroma', 'run', '--path', '$DIR/data', '--host', '127.0.0.1', '--port', '$PORT'])" \
    >"$DIR/chroma.log" 2>&1 &
  echo $! >"$DIR/chroma.pid"
fi
for _ in $(seq 1 150); do
  if heartbeat; then
    echo "TEST_CHROMA_URL=$URL"
    exit 0
  fi
  sleep 0.2
done
log "ChromaDB did not answer its heartbeat; log follows"
tail -n 30 "$DIR/chroma.log" >&2 || true
exit 1
