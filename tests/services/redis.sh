#!/usr/bin/env bash
# A throwaway Redis for the server's test suite (no Docker, no systemd).
#
#   eval "$(tests/services/redis.sh | tail -n1)"   # sets TEST_REDIS_URL
#   cargo test -p oyl-server                        # rate limits now go through Redis
#   tests/services/redis-down.sh
#
# Installs redis-server from apt when missing, starts it on 127.0.0.1:$OYL_TEST_REDIS_PORT
# (default 26379) without persistence, waits for PING, prints TEST_REDIS_URL=... last. Idempotent.
set -euo pipefail
PORT="${OYL_TEST_REDIS_PORT:-26379}"
DIR="${OYL_TEST_REDIS_DIR:-/tmp/oyl-test-redis}"
log() { echo "redis.sh: $*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "installing redis-server from apt"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
  else
    sudo -n env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -qq && apt-get install -y -qq redis-server' >&2
  fi
fi

mkdir -p "$DIR"
if redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
  log "already running"
else
  log "starting on 127.0.0.1:$PORT"
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$DIR" --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" >&2
fi
for _ in $(seq 1 100); do
  if [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = "PONG" ]; then
    echo "TEST_REDIS_URL=redis://127.0.0.1:$PORT"
    exit 0
  fi
  sleep 0.1
done
log "Redis did not answer PING; log follows"
tail -n 30 "$DIR/redis.log" >&2 || true
exit 1
