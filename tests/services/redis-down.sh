#!/usr/bin/env bash
# Stops the throwaway Redis started by redis.sh. Idempotent.
set -euo pipefail
PORT="${OYL_TEST_REDIS_PORT:-26379}"
DIR="${OYL_TEST_REDIS_DIR:-/tmp/oyl-test-redis}"
redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
rm -rf "$DIR"
echo "redis-down.sh: stopped Redis on port $PORT" >&2
