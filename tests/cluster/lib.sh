# Shared by the scripts under tests/: versions, cache locations, the PATH holding the built tools,
# and waits that tolerate objects with no status yet.
# shellcheck shell=bash
CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLUSTER_DIR/../.." && pwd)"
# shellcheck source=tools/versions.env
. "$CLUSTER_DIR/tools/versions.env"
# Everything expensive is cached here, keyed by version; an empty OYL_CACHE is a cold start
# (Go's build and module caches live here too, so a cold start really compiles everything).
OYL_CACHE="${OYL_CACHE:-$HOME/.cache/oyl}"
K8S_BIN="$OYL_CACHE/bin/k8s-$K8S_VERSION"
ETCD_BIN="$OYL_CACHE/bin/etcd-$ETCD_VERSION"
KWOK_BIN="$OYL_CACHE/bin/kwok-$KWOK_VERSION"
HELM_BIN="$OYL_CACHE/bin/helm-$HELM_VERSION"
COREDNS_BIN="$OYL_CACHE/bin/coredns-$COREDNS_VERSION"
METRICS_SERVER_BIN="$OYL_CACHE/bin/metrics-server-$METRICS_SERVER_VERSION"
# Argo CD (argocd-up.sh): the binary under its three names, its CRDs and install.yaml.
ARGOCD_BIN="$OYL_CACHE/bin/argocd-$ARGOCD_VERSION"
ACTIONLINT_BIN="$OYL_CACHE/bin/actionlint-$ACTIONLINT_VERSION"
TOOLS_PATH="$K8S_BIN:$ETCD_BIN:$KWOK_BIN:$HELM_BIN:$ACTIONLINT_BIN"
# Cargo's output: CARGO_TARGET_DIR when set, as cargo itself does.
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
# Where a running control plane keeps its state, PKI, logs and pid files.
KCP_DIR="${KCP_DIR:-$OYL_CACHE/kcp}"

# wait_condition TIMEOUT_SECONDS TYPE RESOURCE [kubectl args...]: waits until the object exists
# and has condition TYPE=True. Unlike `kubectl wait --for=condition=...`, which exits at once
# with "accessor error: <nil>" while a just-created object has no status.conditions yet, this
# treats a missing object, a missing status and a False/Unknown condition alike: not yet.
wait_condition() {
  local timeout=$1 type=$2 resource=$3; shift 3
  local deadline=$(( $(date +%s) + timeout )) got=""
  while :; do
    got="$(kubectl get "$resource" "$@" -o "jsonpath={.status.conditions[?(@.type==\"$type\")].status}" 2>/dev/null || true)"
    [ "$got" = "True" ] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "timed out after ${timeout}s waiting for $resource condition $type=True (now: ${got:-no such condition})" >&2
      kubectl get "$resource" "$@" -o yaml >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.5
  done
}

# timed: prints each stage of a script with the seconds since the script started.
STAGE_T0="${STAGE_T0:-$(date +%s)}"
stage() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - STAGE_T0 ))" "$*"; }
