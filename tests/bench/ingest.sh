#!/usr/bin/env bash
# Ingestion benchmark: documents and chunks per second through oyl-server's pipeline, extraction
# (at upload) -> chunking -> embedding (built-in hashing embedder) -> indexing, into the embedded
# vector store (on SQLite and on PostgreSQL) and into ChromaDB (tests/services/chroma.sh).
#
#   tests/bench/ingest.sh
#   RUNS=1 STORES="embedded:sqlite" DOCS=20 tests/bench/ingest.sh
#
# Method: the server runs with WORKER_ENABLED=false, so the stages are timed apart: DOCS
# deterministic Markdown files are uploaded PARALLEL at a time (each upload stores the file and
# extracts its text: "extract"), then one process-batch request chunks, embeds and indexes them
# all ("chunk+embed+index"); "embed" is the sum of oyl-server's own embedding_seconds histogram
# over the batch; end to end = upload + process. One fresh server and database per run. With
# ChromaDB, its own floor follows (tests/bench/src/bin/chroma_floor.rs: the same records
# upserted straight into ChromaDB, in $OUT/chroma-floor.jsonl).
#
# Environment: RUNS (3), DOCS (100), CHARS (79600: 100 chunks per document with the default
# CHUNK_SIZE/CHUNK_OVERLAP), PARALLEL (4), STORES ("embedded:sqlite embedded:postgres
# chroma:sqlite"), OYL_SERVER_BIN, OUT.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
DOCS=${DOCS:-100}
CHARS=${CHARS:-79600}
PARALLEL=${PARALLEL:-4}
STORES=${STORES:-"embedded:sqlite embedded:postgres chroma:sqlite"}
start_results ingest

ensure_apt_tools jq:jq curl:curl
build_helpers
SERVER_BIN="$(release_bin oyl-server oyl-server "${OYL_SERVER_BIN:-}")"
machine_facts | tee "$OUT/machine.txt" >&2
SERVER_PID=
trap 'stop_server' EXIT

CORPUS="$OYL_CACHE/bench-corpus/rag-$DOCS-$CHARS"
[ -d "$CORPUS" ] || "$BENCH_BIN/corpus" --dir "$CORPUS" --docs "$DOCS" --chars "$CHARS" --format md

now() { date +%s.%N; }

for pair in $STORES; do
  store=${pair%%:*} backend=${pair#*:}
  for ((run = 1; run <= RUNS; run++)); do
    work="$OUT/$store-$backend-$run"; mkdir -p "$work"
    url="$(bench_database "$backend" "$work")"
    server_env "$url" "$work"
    export WORKER_ENABLED=false
    if [ "$store" = chroma ]; then
      if [ -z "${TEST_CHROMA_URL:-}" ]; then
        line="$("$REPO_ROOT/tests/services/chroma.sh" | tail -n1)" || die "chroma.sh failed"
        export "${line?}"
      fi
      hostport=${TEST_CHROMA_URL#*://}; hostport=${hostport%%/*}
      export CHROMA_HOST=${hostport%:*} CHROMA_PORT=${hostport##*:}
    fi
    seed_tenant "$SERVER_BIN" "Ingest $store $backend $run"
    start_server "$SERVER_BIN" "$work/server.log"
    rss_reset "$SERVER_PID"
    load=$(loadavg); busy0=$(machine_busy_seconds); srv0=$(cpu_seconds "$SERVER_PID")
    embed0=$(metric embedding_seconds_sum); embed0=${embed0:-0}
    t0=$(now)
    upload_dir "$CORPUS" "$PARALLEL"
    t1=$(now)
    chunks=$(process_batch)
    t2=$(now)
    busy1=$(machine_busy_seconds); srv1=$(cpu_seconds "$SERVER_PID")
    embed1=$(metric embedding_seconds_sum)
    docs=$(find "$CORPUS" -type f | wc -l)
    [ "$chunks" -gt 0 ] || die "no chunks were indexed (see $work/server.log)"
    other=$(awk -v b="$busy1" -v a="$busy0" -v s1="$srv1" -v s0="$srv0" -v d="$(awk -v a="$t0" -v b="$t2" 'BEGIN {print b - a}')" -v n="$(nproc)" \
      'BEGIN {o = ((b - a) - (s1 - s0)) / (d * n) * 100; if (o < 0) o = 0; printf "%.0f", o}')
    row=$(awk -v t0="$t0" -v t1="$t1" -v t2="$t2" -v e0="$embed0" -v e1="$embed1" \
      'BEGIN {printf "%.3f\t%.3f\t%.3f\t%.3f", t1 - t0, t2 - t1, e1 - e0, t2 - t0}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$store" "$backend" "$docs" "$chunks" "$row" \
      "$(rss_peak_mb "$SERVER_PID")" "$load" "$other" >>"$RESULTS"
    log "$store/$backend run $run: $docs docs, $chunks chunks; upload/process/embed/total s: $(echo "$row" | tr '\t' ' '); other CPU ${other}% (includes curl)"
    if [ "$store" = chroma ]; then # drop the run's vectors (a database per tenant in ChromaDB)
      curl -fsS -o /dev/null -X DELETE -H "Authorization: Bearer $("$SERVER_BIN" token --admin 2>/dev/null)" \
        -H "X-Tenant-ID: $TENANT_ID" "$BASE/api/v1/tenants/$TENANT_ID" || log "could not delete the run's tenant"
    fi
    stop_server
    drop_bench_database "$url"
    unset CHROMA_HOST CHROMA_PORT
  done
done

# ChromaDB's own floor: the same records upserted straight into it, no oyl-server (one
# document's 100 chunks per request as the server sends them; 1 000 per request; 4 clients).
if [[ " $STORES " == *" chroma:"* ]]; then
  for shape in "100 1" "1000 1" "100 4"; do
    read -r batch clients <<<"$shape"
    "$BENCH_BIN/chroma_floor" --url "$TEST_CHROMA_URL" --records 2000 --batch "$batch" --clients "$clients" \
      | tee -a "$OUT/chroma-floor.jsonl" >&2
  done
fi

"$BENCH_DIR/report.sh" ingest "$OUT"
