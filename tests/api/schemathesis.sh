#!/usr/bin/env bash
# Schemathesis (PyPI, pinned below) against the real server: does the OpenAPI document tell the
# truth? Starts `oyl-server serve` (release build) on a free port with a fresh SQLite database and
# the embedded defaults (no Redis, no Chroma, no LLM), mints an admin token, and runs every check
# (`--checks all`) through every phase: the schema's examples, coverage (boundaries and each
# invalid variant), fuzzing, and the stateful phase, which follows the document's links
# (create → read → update → delete, in the created resource's tenant). A fixed seed and example
# budget keep it reproducible and to a few minutes. Passes only with zero failures. Always stops
# the server and removes its data.
#
#   tests/api/schemathesis.sh                      builds the release server first
#   OYL_SERVER_BIN=target/release/oyl-server tests/api/schemathesis.sh
#   MAX_EXAMPLES=50 SEED=7 tests/api/schemathesis.sh
#   AS=tenant tests/api/schemathesis.sh            as the seeded tenant's token (default: admin)
#
# Installed by tests/setup.sh into $OYL_CACHE/schemathesis-$SCHEMATHESIS_VERSION-venv (or set
# SCHEMATHESIS to its executable). Reports (JUnit, NDJSON) go to $REPORT_DIR when set.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/cluster/lib.sh
# shellcheck source=versions.env
. tests/api/versions.env

ST="${SCHEMATHESIS:-$OYL_CACHE/schemathesis-$SCHEMATHESIS_VERSION-venv/bin/schemathesis}"
[ -x "$ST" ] || { echo "schemathesis $SCHEMATHESIS_VERSION not found at $ST: run tests/setup.sh" >&2; exit 1; }
SEED="${SEED:-20261204}"
MAX_EXAMPLES="${MAX_EXAMPLES:-200}"

BIN="${OYL_SERVER_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release --quiet -p oyl-server
  BIN="$TARGET_DIR/release/oyl-server"
fi
[ -x "$BIN" ] || { echo "$BIN is not executable" >&2; exit 1; }

WORK="$(mktemp -d)"
SERVER_PID=
stop() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap stop EXIT

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
# The embedded defaults; rate limits far above what the run sends (429 is documented, but a
# throttled run would test the limiter instead of the operations).
env -i PATH="$PATH" HOME="$WORK" \
  DATABASE_URL="sqlite://$WORK/oyl.db" UPLOAD_DIR="$WORK/uploads" \
  SECRET_KEY="schemathesis-secret-key-0123456789abcdef" \
  RATE_LIMIT_REQUESTS_PER_MINUTE=100000000 RATE_LIMIT_BURST=100000000 \
  RATE_LIMIT_READS_PER_MINUTE=100000000 RATE_LIMIT_READ_BURST=100000000 \
  LOG_LEVEL="${SERVER_LOG_LEVEL:-warn}" \
  bash -c 'exec "$1" serve --host 127.0.0.1 --port "$2"' _ "$BIN" "$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# Ready when /readyz answers 200 (migrations applied), or fail with the server's log.
for _ in $(seq 1 300); do
  if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/server.log" >&2; echo "oyl-server exited" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/readyz" || { cat "$WORK/server.log" >&2; echo "oyl-server did not become ready" >&2; exit 1; }

TOKEN="$(env -i PATH="$PATH" HOME="$WORK" DATABASE_URL="sqlite://$WORK/oyl.db" \
  SECRET_KEY="schemathesis-secret-key-0123456789abcdef" LOG_LEVEL=error \
  "$BIN" token --admin --expires-minutes 120)"

# Resources to fuzz against besides the ones the run creates: a tenant with a workspace, a teammate,
# an assistant and a document. Half the generated ids of the read and write operations (not the
# deletes, which would remove them early) are these, so the fuzzing phase reaches past "not found".
SEEDED="$(env -i PATH="$PATH" HOME="$WORK" DATABASE_URL="sqlite://$WORK/oyl.db" UPLOAD_DIR="$WORK/uploads" \
  SECRET_KEY="schemathesis-secret-key-0123456789abcdef" LOG_LEVEL=error \
  "$BIN" seed --name "Schemathesis seed")"
seeded() { echo "$SEEDED" | sed -n "s/^$1=//p"; }
DOCUMENT_ID="$(curl -fsS -H "Authorization: Bearer $TOKEN" -F "file=@README.md;type=text/markdown" \
  "$BASE/api/v1/assistants/$(seeded ASSISTANT_ID)/knowledge/upload" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
cat >"$WORK/schemathesis.toml" <<TOML
[dictionaries.tenant]
values = ["$(seeded TENANT_ID)"]
[dictionaries.workspace]
values = ["$(seeded WORKSPACE_ID)"]
[dictionaries.teammate]
values = ["$(seeded TEAMMATE_ID)"]
[dictionaries.assistant]
values = ["$(seeded ASSISTANT_ID)"]
[dictionaries.document]
values = ["$DOCUMENT_ID"]

[[operations]]
exclude-method = "DELETE"
parameters = { "path.tenant_id" = { dictionary = "tenant", probability = 0.5 }, "path.workspace_id" = { dictionary = "workspace", probability = 0.5 }, "path.teammate_id" = { dictionary = "teammate", probability = 0.5 }, "path.assistant_id" = { dictionary = "assistant", probability = 0.5 }, "path.document_id" = { dictionary = "document", probability = 0.5 } }
TOML

# AS=tenant: run with the seeded tenant's token instead of the admin's.
if [ "${AS:-admin}" = tenant ]; then
  TOKEN="$(env -i PATH="$PATH" HOME="$WORK" DATABASE_URL="sqlite://$WORK/oyl.db" \
    SECRET_KEY="schemathesis-secret-key-0123456789abcdef" LOG_LEVEL=error \
    "$BIN" token --tenant "$(seeded TENANT_ID)" --expires-minutes 120)"
fi

report=()
if [ -n "${REPORT_DIR:-}" ]; then
  REPORT_DIR="$(realpath -m "$REPORT_DIR")"
  mkdir -p "$REPORT_DIR"
  report=(--report junit,ndjson --report-dir "$REPORT_DIR")
fi

echo "schemathesis $SCHEMATHESIS_VERSION: seed $SEED, $MAX_EXAMPLES examples per operation, against $BASE"
status=0
# From the scratch directory: Schemathesis keeps caches in its working directory.
(cd "$WORK" && "$ST" run "$BASE/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --mode all \
  --seed "$SEED" \
  --max-examples "$MAX_EXAMPLES" \
  --workers 1 \
  --request-timeout 30 \
  --header "Authorization: Bearer $TOKEN" \
  --output-truncate false \
  --generation-database none \
  "${report[@]}") || status=$?

if [ "$status" -ne 0 ]; then
  echo "--- oyl-server log (warnings and errors) ---" >&2
  tail -n 50 "$WORK/server.log" >&2
fi
# A server error is a failure even if every check passed.
if grep -q '"level":"ERROR"\|ERROR' "$WORK/server.log"; then
  echo "oyl-server logged errors:" >&2
  grep 'ERROR' "$WORK/server.log" | head -n 20 >&2
  status=1
fi
exit "$status"
