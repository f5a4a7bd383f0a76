#!/usr/bin/env bash
# Stops the throwaway ChromaDB started by chroma.sh and deletes its data (the venv is kept in
# $OYL_TEST_CHROMA_DIR/venv unless OYL_TEST_CHROMA_PURGE=1). Idempotent.
set -euo pipefail
DIR="${OYL_TEST_CHROMA_DIR:-/tmp/oyl-test-chroma}"
if [ -f "$DIR/chroma.pid" ]; then
  pid="$(cat "$DIR/chroma.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$DIR/chroma.pid"
fi
rm -rf "$DIR/data" "$DIR/chroma.log"
if [ "${OYL_TEST_CHROMA_PURGE:-0}" = 1 ]; then rm -rf "$DIR"; fi
echo "chroma-down.sh: stopped ChromaDB" >&2
