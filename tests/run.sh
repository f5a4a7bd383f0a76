#!/usr/bin/env bash
# Runs every test: formatting and lints, the unit and integration tests of every crate, the
# end-to-end suites against a local Kubernetes control plane with simulated pods (kwok), and, as
# root, the real-node suites, in which every container of the platform runs (images built here),
# and Argo CD syncing the shipped config/argocd onto a fresh real node.
# It starts every cluster it uses (building its binaries on first use) and always stops it again,
# leaving the machine as it found it (checked). It first installs or builds every tool it
# needs (tests/setup.sh), so it passes on a fresh machine with only the toolchains.
#
#   tests/run.sh          warm: reuses $OYL_CACHE (default ~/.cache/oyl) and the target dir
#   tests/run.sh --cold   proves a cold start: a fresh empty OYL_CACHE and CARGO_TARGET_DIR
#                         (removed afterwards unless --keep), so nothing cached is reused
#
# Honours OYL_CACHE and CARGO_TARGET_DIR. Services the server tests use (PostgreSQL, Redis,
# Chroma) are started by tests/services/*.sh unless their TEST_* variables are already set.
set -euo pipefail
cd "$(dirname "$0")/.."
cold=false keep=false
for arg in "$@"; do
  case "$arg" in
    --cold) cold=true ;;
    --keep) keep=true ;;
    *) echo "usage: tests/run.sh [--cold [--keep]]" >&2; exit 2 ;;
  esac
done
if $cold; then
  cold_root="$(mktemp -d /var/tmp/oyl-cold.XXXXXX)"
  chmod 755 "$cold_root"   # the postgres user runs the test database under it
  export OYL_CACHE="$cold_root/cache" CARGO_TARGET_DIR="$cold_root/target"
  # A control plane of its own, on other ports, so a running warm one is left alone.
  export KCP_API_PORT=26443 KCP_ETCD_PORT=22379 KCP_KCM_PORT=20257 KCP_SCHEDULER_PORT=20259
  # The test services' installs (ChromaDB's venv) and data, fresh too.
  export OYL_TEST_CHROMA_DIR="$cold_root/chroma" OYL_TEST_PG_DIR="$cold_root/postgres"
  mkdir -p "$OYL_CACHE" "$CARGO_TARGET_DIR"
  echo "cold start: OYL_CACHE=$OYL_CACHE CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
  $keep || trap 'chmod -R u+w "$cold_root" 2>/dev/null; rm -rf "$cold_root"' EXIT
fi
. tests/cluster/lib.sh
export OYL_CACHE STAGE_T0
OPERATOR_BIN="$TARGET_DIR/debug/oyl-operator"
export OYL_OPERATOR_BIN="$OPERATOR_BIN"

stage "tools: install and build what is missing (apt, PyPI, Go module proxy)"
tests/setup.sh
export PATH="$TOOLS_PATH:$PATH"

stage "format, lint and layering (no module import cycle in the operator or the server); the workflows"
# The GitHub workflows (CI, release) with actionlint and, inside their run: scripts, shellcheck.
actionlint -shellcheck="$(command -v shellcheck)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo xtask cycles

stage "build"
cargo build --workspace --all-targets

stage "CRD is generated from the Rust types (crds/ and the chart's copy)"
for copy in crds/oylplatforms.oyl.dev.yaml charts/oyl-operator/files/oylplatforms.oyl.dev.yaml; do
  diff -q "$copy" <("$OPERATOR_BIN" crd) >/dev/null || { echo "$copy is stale: run" \
    "'cargo run -p oyl-operator -- crd | tee crds/oylplatforms.oyl.dev.yaml > charts/oyl-operator/files/oylplatforms.oyl.dev.yaml'" >&2; exit 1; }
done

stage "checkov on the chart and on what the operator renders"
tests/chart/checkov.sh

stage "server tests on the embedded defaults (SQLite, in-process limiter and cache, embedded vectors)"
# --workspace (not -p oyl-server) reuses the workspace build instead of re-resolving features;
# without --include-ignored this runs only what needs no services.
env -u TEST_DATABASE_URL -u TEST_REDIS_URL -u TEST_CHROMA_URL cargo test --workspace --no-fail-fast

stage "the API document against the server: Schemathesis, every check and the stateful phase (release build, SQLite)"
tests/api/schemathesis.sh                          # as an admin (creates tenants; no header needed)
AS=tenant MAX_EXAMPLES=50 tests/api/schemathesis.sh   # as a tenant: 403s, its own tenant only

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
# Runs before the --cold trap's removal: bash keeps one EXIT trap, so chain it.
prev_trap="$(trap -p EXIT | sed -n "s/^trap -- '\(.*\)' EXIT$/\1/p")"
trap 'for c in "${cleanup[@]}"; do "$c" >/dev/null 2>&1 || true; done; '"$prev_trap" EXIT

stage "control plane (start)"
OYL_E2E_KUBECONFIG="$(tests/cluster/up.sh | tail -n 1)"
export OYL_E2E_KUBECONFIG

stage "tests (unit, integration, end-to-end; the server's against PostgreSQL, Redis and ChromaDB)"
# The docs pages are also rendered in a real headless browser with no internet.
if [ -z "${TEST_BROWSER:-}" ] && command -v chromium-headless-shell >/dev/null; then
  export TEST_BROWSER=chromium-headless-shell
fi
cargo test --workspace --no-fail-fast -- --include-ignored

if [ "$(id -u)" -eq 0 ]; then
  stage "images (release binaries; PostgreSQL, Redis and ChromaDB from Debian and PyPI)"
  tests/images/build.sh

  stage "real node: every container runs; the machine is left as found (tests/e2e/real_node*.rs)"
  tests/cluster/down.sh   # the kwok cluster, in the same directory and on the same ports
  # One platform at a time: the node has the machine's 2 CPUs.
  tests/cluster/real-node/check-clean.sh \
    cargo test --workspace --test real_node --test real_node_data --test real_node_faults --test real_node_hpa --no-fail-fast -- --ignored --test-threads=1

  stage "Argo CD on a fresh real node: the shipped config/argocd synced from this checkout's HEAD (tests/e2e/argocd.rs)"
  # A cluster of its own: Argo CD installs the CRD (the suites above leave it and the operator).
  # The tests run together: the 5-minute Synced window overlaps the other scenarios.
  tests/cluster/real-node/check-clean.sh \
    cargo test --workspace --test argocd --no-fail-fast -- --ignored --test-threads=4
else
  echo "real-node suite skipped: it needs root (containerd, kubelet, network namespaces)" >&2
fi

stage "done"
