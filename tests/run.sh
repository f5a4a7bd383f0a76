#!/usr/bin/env bash
# Runs every test: formatting and lints, the unit and integration tests of every crate, and the
# end-to-end suites against a local Kubernetes control plane that this script starts (building
# its binaries on first use) and always stops again.
# Services the server tests use (PostgreSQL, Redis, Chroma) are started by tests/services/*.sh
# when present and their TEST_* variables are not already set.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/cluster/lib.sh
stage_start=$(date +%s)
stage() { local now; now=$(date +%s); printf '\n==> [%4ss] %s\n' "$((now - stage_start))" "$*"; }

stage "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

stage "build"
cargo build --workspace --all-targets

stage "CRD is generated from the Rust types (crds/ and the chart's copy)"
for copy in crds/oylplatforms.oyl.dev.yaml charts/oyl-operator/files/oylplatforms.oyl.dev.yaml; do
  diff -q "$copy" <(target/debug/oyl-operator crd) >/dev/null || { echo "$copy is stale: run" \
    "'target/debug/oyl-operator crd | tee crds/oylplatforms.oyl.dev.yaml > charts/oyl-operator/files/oylplatforms.oyl.dev.yaml'" >&2; exit 1; }
done

stage "checkov on the chart and on what the operator renders"
tests/chart/checkov.sh

stage "server tests on the embedded defaults (SQLite, in-process limiter and cache, embedded vectors)"
# --workspace (not -p oyl-server) reuses the workspace build instead of re-resolving features;
# without --include-ignored this runs only what needs no services.
env -u TEST_DATABASE_URL -u TEST_REDIS_URL -u TEST_CHROMA_URL cargo test --workspace --no-fail-fast

stage "services for the server tests"
cleanup=("tests/cluster/down.sh")
for svc in postgres redis chroma; do
  var="TEST_$(echo "$svc" | tr a-z A-Z)_URL"; [ "$svc" = postgres ] && var=TEST_DATABASE_URL
  if [ -z "${!var:-}" ] && [ -x "tests/services/$svc.sh" ]; then
    line="$("tests/services/$svc.sh" | tail -n 1)"
    export "${line?}"
    [ -x "tests/services/$svc-down.sh" ] && cleanup+=("tests/services/$svc-down.sh")
  fi
done
trap 'for c in "${cleanup[@]}"; do "$c" >/dev/null 2>&1 || true; done' EXIT

stage "control plane (build on first use, then start)"
OYL_E2E_KUBECONFIG="$(tests/cluster/up.sh | tail -n 1)"
export OYL_E2E_KUBECONFIG PATH="$TOOLS_PATH:$PATH"

stage "tests (unit, integration, end-to-end; the server's against PostgreSQL, Redis and ChromaDB)"
# The docs pages are also rendered in a real headless browser with no internet.
if [ -z "${TEST_BROWSER:-}" ] && command -v chromium-headless-shell >/dev/null; then
  export TEST_BROWSER=chromium-headless-shell
fi
cargo test --workspace --no-fail-fast -- --include-ignored

stage "done"
