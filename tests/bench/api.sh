#!/usr/bin/env bash
# API load benchmark: oyl-server (release) on SQLite and PostgreSQL, driven by wrk, beside a bare
# axum handler (tests/bench/src/bin/ceiling.rs) on the same machine as the ceiling.
#
#   tests/bench/api.sh                      # everything: ~20 min with the defaults
#   RUNS=1 DURATION=5 BACKENDS=sqlite ENDPOINTS="get" CONNS=64 tests/bench/api.sh   # one cell
#
# Endpoints: health (GET /health), get (authenticated GET /api/v1/tenants/{id}), workspace,
# teammate, assistant, document (authenticated GET of one by id: /api/v1/workspaces/{id} etc.), list (GET
# /api/v1/tenants/{id}/workspaces?limit=20&offset=20 over 100 workspaces), post (POST
# /api/v1/tenants/{id}/workspaces), rag (POST /api/v1/teammates/{id}/query over 10 000 chunks,
# built-in hashing embedder, embedded vector store, extractive answer; beside it an exact search
# by brute-force scan of as many vectors in one process, the memory-bandwidth reference).
# Each cell: WARMUP s unrecorded, then DURATION s measured, RUNS times; the table shows medians.
# Peak RSS is the server's VmHWM during the measured runs of that cell (reset before each one).
# "other CPU" is the machine's busy CPU not used by oyl-server or wrk during the measurement, in
# % of all cores: other engineers' work (and PostgreSQL itself on the postgres rows).
#
# Environment: DURATION (10), WARMUP (2), RUNS (3), CONNS ("1 16 64"), BACKENDS ("sqlite
# postgres"; a "+redis" suffix, e.g. "postgres+redis", gives the server REDIS_URL as the operator
# does: the rate limiter and the cache in Redis, tests/services/redis.sh; a "+chroma" suffix
# keeps the vectors in ChromaDB, tests/services/chroma.sh, as the operator deploys it), ENDPOINTS ("health get
# workspace teammate assistant document list rag post": post last, its thousands of rows
# would slow the SQLite scans of the others), CEILING (1), WRK_THREADS (2),
# OYL_SERVER_BIN (skip the release build and use this binary), OUT (results directory),
# BENCH_LOG_LEVEL (warn).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-3}
CONNS=${CONNS:-"1 16 64"}
BACKENDS=${BACKENDS:-"sqlite postgres"}
ENDPOINTS=${ENDPOINTS:-"health get workspace teammate assistant document list rag post"}
CEILING=${CEILING:-1}
WRK_THREADS=${WRK_THREADS:-2}
RAG_DOCS=${RAG_DOCS:-100}
RAG_CHARS=${RAG_CHARS:-79600}
RAG_QUERY=${RAG_QUERY:-"When is the invoice payment deadline and what is the refund policy?"}
start_results api

ensure_apt_tools wrk:wrk time:time jq:jq curl:curl
build_helpers
SERVER_BIN="$(release_bin oyl-server oyl-server "${OYL_SERVER_BIN:-}")"
machine_facts | tee "$OUT/machine.txt" >&2

SERVER_PID=
cleanup() { stop_server; [ -n "${CEILING_PID:-}" ] && kill "$CEILING_PID" 2>/dev/null; true; }
trap cleanup EXIT

# measure TARGET BACKEND ENDPOINT CONNS PID URL: warm-up, then RUNS measured wrk runs.
measure() {
  local target=$1 backend=$2 endpoint=$3 conns=$4 pid=$5 url=$6 threads run
  threads=$(( conns < WRK_THREADS ? conns : WRK_THREADS ))
  wrk -t"$threads" -c"$conns" -d"${WARMUP}s" --timeout 30s -s "$BENCH_DIR/wrk.lua" "$url" >/dev/null 2>&1 || true
  for ((run = 1; run <= RUNS; run++)); do
    rss_reset "$pid"
    local load busy0 busy1 srv0 srv1 out json wrk_cpu other
    load=$(loadavg); busy0=$(machine_busy_seconds); srv0=$(cpu_seconds "$pid")
    out=$(/usr/bin/time -f 'WRK_CPU %U %S' wrk -t"$threads" -c"$conns" -d"${DURATION}s" --timeout 30s \
      -s "$BENCH_DIR/wrk.lua" "$url" 2>&1) || { echo "$out" >&2; die "wrk failed"; }
    busy1=$(machine_busy_seconds); srv1=$(cpu_seconds "$pid")
    json=$(echo "$out" | sed -n 's/^BENCH_JSON //p')
    [ -n "$json" ] || { echo "$out" >&2; die "no result from wrk"; }
    wrk_cpu=$(echo "$out" | awk '/^WRK_CPU/ {print $2 + $3}')
    other=$(awk -v b="$busy1" -v a="$busy0" -v s1="$srv1" -v s0="$srv0" -v w="$wrk_cpu" -v d="$DURATION" -v n="$(nproc)" \
      'BEGIN {o = ((b - a) - (s1 - s0) - w) / (d * n) * 100; if (o < 0) o = 0; printf "%.0f", o}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$backend" "$endpoint" "$conns" "$run" \
      "$(echo "$json" | jq -r .rps)" "$(echo "$json" | jq -r '.p50_us / 1000')" "$(echo "$json" | jq -r '.p99_us / 1000')" \
      "$(echo "$json" | jq -r '.non2xx + .connect_errors + .read_errors + .write_errors + .timeouts')" \
      "$(rss_peak_mb "$pid")" "$load" "$other" >>"$RESULTS"
    log "$target/$backend $endpoint c=$conns run $run: $(echo "$json" | jq -c '{rps, p50_ms: (.p50_us/1000), p99_ms: (.p99_us/1000), non2xx}') other CPU ${other}%"
    # A figure of failed requests is no figure (e.g. 429s from a budget the bench forgot).
    [ "$(echo "$json" | jq -r '.non2xx + .connect_errors + .read_errors + .write_errors + .timeouts')" = 0 ] \
      || die "$target/$backend $endpoint c=$conns: failed requests (see the line above)"
  done
}

# The RAG corpus: RAG_DOCS deterministic Markdown files (100 x 79 600 characters = 10 000 chunks).
CORPUS="$OYL_CACHE/bench-corpus/rag-$RAG_DOCS-$RAG_CHARS"
[ -d "$CORPUS" ] || "$BENCH_BIN/corpus" --dir "$CORPUS" --docs "$RAG_DOCS" --chars "$RAG_CHARS" --format md

for backend in $BACKENDS; do
  work="$OUT/$backend"; mkdir -p "$work"
  url="$(bench_database "${backend%%+*}" "$work")"
  server_env "$url" "$work"
  if [[ "$backend" == *+chroma* ]]; then
    if [ -z "${TEST_CHROMA_URL:-}" ]; then
      line="$("$REPO_ROOT/tests/services/chroma.sh" | tail -n1)" || die "chroma.sh failed"
      export "${line?}"
    fi
    hostport=${TEST_CHROMA_URL#*://}; hostport=${hostport%%/*}
    export CHROMA_HOST=${hostport%:*} CHROMA_PORT=${hostport##*:}
  fi
  if [[ "$backend" == *+redis* ]]; then
    if [ -z "${TEST_REDIS_URL:-}" ]; then
      line="$("$REPO_ROOT/tests/services/redis.sh" | tail -n1)" || die "redis.sh failed"
      export "${line?}"
    fi
    export REDIS_URL=$TEST_REDIS_URL
  fi
  seed_tenant "$SERVER_BIN" "Bench Tenant B"; TENANT_B=$TENANT_ID TOKEN_B=$TOKEN
  seed_tenant "$SERVER_BIN" "Bench Tenant A"
  start_server "$SERVER_BIN" "$work/server.log"
  sleep 2
  printf 'idle\t%s\tstart\t0\t0\t0\t0\t0\t0\t%s\t%s\t0\n' "$backend" "$(rss_now_mb "$SERVER_PID")" "$(loadavg)" >>"$RESULTS"
  log "$backend: idle RSS $(rss_now_mb "$SERVER_PID") MiB"
  auth=(-H "Authorization: Bearer $TOKEN" -H "X-Tenant-ID: $TENANT_ID" -H "content-type: application/json")
  for i in $(seq 1 100); do
    curl -fsS -o /dev/null "${auth[@]}" -d "{\"name\": \"Workspace $i\"}" "$BASE/api/v1/tenants/$TENANT_ID/workspaces"
  done
  if [[ " $ENDPOINTS " == *" rag "* ]]; then
    log "$backend: ingesting the RAG corpus ($RAG_DOCS documents)"
    upload_dir "$CORPUS" 4
    # Into ChromaDB a batch of hundreds of documents outlasts the server's 60 s request timeout:
    # there the in-process worker alone processes them, as uploads arrive.
    [[ "$backend" == *+chroma* ]] || process_batch >/dev/null
    chunks=$(wait_processed 1800)
    RAG_CHUNKS=$chunks
    log "$backend: $chunks chunks indexed"
    echo "$chunks" >"$work/chunks"
  fi
  if [[ " $ENDPOINTS " == *" document "* ]]; then
    if [[ " $ENDPOINTS " != *" rag "* ]]; then
      printf 'One document to read by id.\n' >"$work/one.txt"
      curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" -H "X-Tenant-ID: $TENANT_ID" \
        -F "file=@$work/one.txt" "$BASE/api/v1/assistants/$ASSISTANT_ID/knowledge/upload"
      process_batch >/dev/null
    fi
    DOCUMENT_ID=$(curl -fsS "${auth[@]}" "$BASE/api/v1/assistants/$ASSISTANT_ID/knowledge/documents?limit=1" | jq -r '.items[0].id')
  fi
  for endpoint in $ENDPOINTS; do
    for c in $CONNS; do
      export BENCH_METHOD=GET BENCH_BODY= BENCH_TOKEN=$TOKEN BENCH_TENANT=$TENANT_ID
      case $endpoint in
        health) BENCH_TOKEN= BENCH_TENANT= ; path=/health ;;
        get) path="/api/v1/tenants/$TENANT_ID" ;;
        workspace) path="/api/v1/workspaces/$WORKSPACE_ID" ;;
        teammate) path="/api/v1/teammates/$TEAMMATE_ID" ;;
        assistant) path="/api/v1/assistants/$ASSISTANT_ID" ;;
        document) path="/api/v1/documents/$DOCUMENT_ID" ;;
        list) path="/api/v1/tenants/$TENANT_ID/workspaces?limit=20&offset=20" ;;
        post) BENCH_METHOD=POST BENCH_BODY='{"name": "Bench workspace", "description": "created by tests/bench/api.sh"}'
              BENCH_TOKEN=$TOKEN_B BENCH_TENANT=$TENANT_B; path="/api/v1/tenants/$TENANT_B/workspaces" ;;
        rag) BENCH_METHOD=POST BENCH_BODY="{\"query\": \"$RAG_QUERY\"}"; path="/api/v1/teammates/$TEAMMATE_ID/query" ;;
        *) die "unknown endpoint $endpoint" ;;
      esac
      export BENCH_TOKEN BENCH_TENANT BENCH_METHOD BENCH_BODY
      measure oyl-server "$backend" "$endpoint" "$c" "$SERVER_PID" "$BASE$path"
    done
  done
  sleep 2
  printf 'idle\t%s\tafter load\t0\t0\t0\t0\t0\t0\t%s\t%s\t0\n' "$backend" "$(rss_now_mb "$SERVER_PID")" "$(loadavg)" >>"$RESULTS"
  if [[ "$backend" == *+chroma* ]]; then # drop the run's vectors (a database per tenant in ChromaDB)
    curl -fsS -o /dev/null -X DELETE -H "Authorization: Bearer $("$SERVER_BIN" token --admin 2>/dev/null)" \
      -H "X-Tenant-ID: $TENANT_ID" "$BASE/api/v1/tenants/$TENANT_ID" || log "could not delete the run's tenant"
  fi
  stop_server
  drop_bench_database "$url"
done

# The RAG cells' reference: an exact search by brute-force scan of as many f32 vectors, in one
# process (tests/bench/src/bin/scan_floor.rs), at the same connection counts (threads).
if [ -n "${RAG_CHUNKS:-}" ]; then
  log "brute-force scan of $RAG_CHUNKS x 384 f32 vectors (the RAG reference)"
  for run in $(seq 1 "$RUNS"); do
    "$BENCH_BIN/scan_floor" --rows "$RAG_CHUNKS" --dim 384 --conns "$CONNS" \
      --seconds "$DURATION" --run "$run" >>"$RESULTS"
  done
fi

if [ "$CEILING" = 1 ]; then
  port=$(free_port)
  "$BENCH_BIN/ceiling" --port "$port" & CEILING_PID=$!
  wait_http "http://127.0.0.1:$port/health" 10 || die "ceiling did not start"
  printf 'idle\tnone\tstart\t0\t0\t0\t0\t0\t0\t%s\t%s\t0\n' "$(rss_now_mb "$CEILING_PID")" "$(loadavg)" >>"$RESULTS"
  export BENCH_METHOD=GET BENCH_BODY= BENCH_TOKEN=x BENCH_TENANT=00000000-0000-0000-0000-000000000000
  for c in $CONNS; do
    measure bare-axum none health "$c" "$CEILING_PID" "http://127.0.0.1:$port/health"
    measure bare-axum none get "$c" "$CEILING_PID" "http://127.0.0.1:$port/api/v1/tenants/00000000-0000-0000-0000-000000000000"
  done
  kill "$CEILING_PID"; wait "$CEILING_PID" 2>/dev/null || true; CEILING_PID=
fi

"$BENCH_DIR/report.sh" api "$OUT"
