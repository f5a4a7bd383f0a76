# Shared by the benchmark scripts (sourced). Machine facts, builds, process measurements.
# shellcheck shell=bash
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH_DIR/../.." && pwd)"
OYL_CACHE="${OYL_CACHE:-$HOME/.cache/oyl}"
# The helper crate (ceiling, kproxy, corpus) builds here, outside the repository.
OYL_BENCH_TARGET="${OYL_BENCH_TARGET:-$OYL_CACHE/bench-target}"
BENCH_BIN="$OYL_BENCH_TARGET/release"

log() { echo "[$(date +%T)] $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# One line per fact; printed above every table and saved with the results.
machine_facts() {
  local model
  model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"
  echo "machine: $(nproc) cores ($model), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
  if [ -n "${OYL_SERVER_BIN:-}${OYL_OPERATOR_BIN:-}" ]; then
    echo "binary:  ${OYL_SERVER_BIN:-}${OYL_OPERATOR_BIN:+ $OYL_OPERATOR_BIN} (prebuilt; built from ${BENCH_COMMIT:-an unrecorded commit})"
  else
    echo "commit:  $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_ROOT" status --porcelain -- server operator 2>/dev/null | grep -q . && echo ' (server/ or operator/ modified in the work tree)')"
  fi
  echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); load average at start: $(loadavg)"
}

# The 1-minute load average (the machine is shared: a value above ~0.5 means other work ran).
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# Builds the helper crate (release).
build_helpers() {
  log "building the benchmark helpers (release) into $OYL_BENCH_TARGET"
  (cd "$BENCH_DIR" && CARGO_TARGET_DIR="$OYL_BENCH_TARGET" cargo build --release --quiet) \
    || die "building tests/bench failed"
}

# Builds a workspace binary in release mode (or uses $2 when given) and prints its path.
release_bin() { # release_bin PACKAGE BIN [PRESET_PATH]
  local pkg=$1 bin=$2 preset=${3:-}
  if [ -n "$preset" ]; then
    [ -x "$preset" ] || die "$preset is not executable"
    echo "$preset"; return
  fi
  log "building $pkg (release)"
  (cd "$REPO_ROOT" && cargo build --release --quiet -p "$pkg") || die "building $pkg failed"
  echo "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/$bin"
}

# Peak resident set size (VmHWM) of a process in MiB, and a reset of that peak (Linux 4.0+:
# writing 5 to clear_refs resets VmHWM to the current RSS), so each scenario has its own peak.
rss_peak_mb() { awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
rss_now_mb()  { awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
rss_reset()   { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
# User+system CPU seconds a process has used.
cpu_seconds() {
  local tck; tck=$(getconf CLK_TCK)
  awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"
}

# A free TCP port on loopback.
free_port() {
  python3 - <<'PY' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# Waits until URL answers 2xx (up to $2 seconds).
wait_http() {
  local url=$1 secs=${2:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    curl -fs -o /dev/null "$url" && return 0
    sleep 0.1
  done
  return 1
}

# Waits (up to $2 s) until the 1-minute load average is below $1, so measurements start on a
# quiet machine when possible; goes on anyway after the timeout (the table shows the load).
wait_quiet() {
  local max=$1 secs=${2:-0} i
  for ((i = 0; i < secs; i += 5)); do
    awk -v m="$max" '{exit !($1 < m)}' /proc/loadavg && return 0
    sleep 5
  done
  return 0
}

# ---- oyl-server helpers (api.sh, ingest.sh) ----

# A database for one benchmark run: prints a DATABASE_URL. sqlite: a file under $1;
# postgres: a fresh database on the test PostgreSQL (tests/services/postgres.sh).
bench_database() { # bench_database BACKEND WORKDIR
  local backend=$1 work=$2
  case "$backend" in
    sqlite) echo "sqlite://$work/oyl.db" ;;
    postgres)
      if [ -z "${TEST_DATABASE_URL:-}" ]; then
        local line; line="$("$REPO_ROOT/tests/services/postgres.sh" | tail -n1)" || die "postgres.sh failed"
        export "${line?}"
      fi
      local db="oyl_bench_$$_$RANDOM"
      psql "$TEST_DATABASE_URL" -qc "CREATE DATABASE $db" >/dev/null || die "cannot create database $db"
      echo "${TEST_DATABASE_URL%/*}/$db"
      ;;
    *) die "unknown backend $backend" ;;
  esac
}

drop_bench_database() { # drop_bench_database URL
  case "$1" in
    postgres*) psql "${1%/*}/postgres" -qc "DROP DATABASE IF EXISTS ${1##*/} WITH (FORCE)" >/dev/null 2>&1 || true ;;
  esac
}

# The environment of every oyl-server the benchmarks start (rate limits far above any load,
# warnings-only logs, a long-lived token).
server_env() { # server_env DATABASE_URL WORKDIR -> exports
  export DATABASE_URL=$1 UPLOAD_DIR=$2/uploads
  export SECRET_KEY="${BENCH_SECRET_KEY:-oyl-benchmark-secret-key-0123456789abcdef}"
  # Both budgets (work and reads) on, as deployed, but far above what a benchmark sends: the
  # limiter's cost is measured, never its 429s.
  export RATE_LIMIT_REQUESTS_PER_MINUTE=1000000000 RATE_LIMIT_BURST=1000000000
  export RATE_LIMIT_READS_PER_MINUTE=1000000000 RATE_LIMIT_READ_BURST=1000000000
  export LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}" ACCESS_TOKEN_EXPIRE_MINUTES=1440
  unset REDIS_URL CHROMA_HOST CHROMA_PORT
}

# Starts `oyl-server serve` on a free port; sets SERVER_PID and BASE.
start_server() { # start_server BIN LOGFILE
  local bin=$1 logfile=$2 port; port=$(free_port)
  "$bin" serve --host 127.0.0.1 --port "$port" >>"$logfile" 2>&1 &
  SERVER_PID=$!
  BASE="http://127.0.0.1:$port"
  wait_http "$BASE/health" 60 || { tail -n 20 "$logfile" >&2; die "oyl-server did not start"; }
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

# Creates a tenant with a workspace, teammate and assistant; sets TENANT_ID, ASSISTANT_ID,
# TEAMMATE_ID, WORKSPACE_ID and a 24-hour TOKEN for that tenant.
seed_tenant() { # seed_tenant BIN NAME
  local bin=$1 name=$2 out
  out="$("$bin" seed --name "$name" 2>/dev/null)" || die "oyl-server seed failed"
  eval "$(echo "$out" | grep -E '^(TENANT_ID|ASSISTANT_ID|TEAMMATE_ID|WORKSPACE_ID)=')"
  TOKEN="$("$bin" token --tenant "$TENANT_ID" --expires-minutes 1440 2>/dev/null)" || die "oyl-server token failed"
}

# Uploads every file of a directory to the assistant's knowledge base (PARALLEL at once).
upload_dir() { # upload_dir DIR [PARALLEL]
  local dir=$1 parallel=${2:-4}
  find "$dir" -type f -print0 | sort -z | xargs -0 -P "$parallel" -I{} \
    curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" -H "X-Tenant-ID: $TENANT_ID" \
      -F "file=@{}" "$BASE/api/v1/assistants/$ASSISTANT_ID/knowledge/upload"
}

# Processes every pending document now; prints the number of chunks made.
process_batch() {
  curl -fsS -X POST -H "Authorization: Bearer $TOKEN" -H "X-Tenant-ID: $TENANT_ID" \
    --max-time 3600 "$BASE/api/v1/assistants/$ASSISTANT_ID/knowledge/process-batch" |
    jq '[.details[] | select(.status == "completed") | .chunks] | add // 0'
}

# A metric's value from oyl-server's /metrics (first sample whose line starts with $1).
metric() { { curl -fs "$BASE/metrics" || true; } | awk -v m="$1" 'index($0, m) == 1 && !done {print $NF; done = 1}'; }

# Busy CPU time of the whole machine so far, in seconds (user+nice+system+irq+softirq+steal).
machine_busy_seconds() {
  local tck; tck=$(getconf CLK_TCK)
  awk -v t="$tck" '/^cpu / {printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t; exit}' /proc/stat
}

start_results() { # start_results NAME: OUT (default /tmp/oyl-bench/NAME-<time>) and an empty RESULTS in it
  OUT=${OUT:-/tmp/oyl-bench/$1-$(date +%Y%m%d-%H%M%S)}
  mkdir -p "$OUT"
  RESULTS="$OUT/results.tsv"
  : >"$RESULTS"
}

# Tools from Debian's packages: wrk (load generator) and GNU time (its CPU use).
ensure_apt_tools() { # ensure_apt_tools CMD:PACKAGE...
  local missing=() pair
  for pair in "$@"; do
    # type -P: a file on PATH (not bash's `time` keyword)
    type -P "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from apt"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    sudo -n sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing[*]}" >&2
  fi
}

# Waits until no document of the assistant is pending or processing (the in-process worker may
# still hold some after process-batch answered); prints the total of completed chunks.
wait_processed() { # wait_processed [TIMEOUT_S]
  local secs=${1:-600} i s
  for ((i = 0; i < secs * 2; i++)); do
    s=$(curl -fsS -H "Authorization: Bearer $TOKEN" -H "X-Tenant-ID: $TENANT_ID" \
      "$BASE/api/v1/assistants/$ASSISTANT_ID/knowledge/status")
    if [ "$(echo "$s" | jq '.pending + .processing')" = 0 ]; then
      echo "$s" | jq '[.documents[] | select(.processed_status == "completed") | .chunk_count] | add // 0'
      return 0
    fi
    sleep 0.5
  done
  die "documents still pending after ${secs}s"
}
