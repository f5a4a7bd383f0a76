#!/usr/bin/env bash
# Regenerates tests/e2e/fixtures/argocd/*.json: real OylPlatform objects (with the status the
# operator wrote) for the Argo CD health check test (tests/e2e/argocd_health.rs).
# Needs the local control plane (tests/cluster/up.sh) and a built operator
# (cargo build -p oyl-operator). Usage: tests/chart/capture-argocd-fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/cluster/lib.sh
export PATH="$TOOLS_PATH:$PATH"
export KUBECONFIG="${OYL_E2E_KUBECONFIG:-$(tests/cluster/up.sh | tail -n 1)}"
OPERATOR="${OYL_OPERATOR_BIN:-${CARGO_TARGET_DIR:-target}/debug/oyl-operator}"
OUT=tests/e2e/fixtures/argocd
NS="argocd-fixtures-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
LOG="$(mktemp)"
op_pid=""
stop_operator() { if [ -n "$op_pid" ]; then kill "$op_pid" 2>/dev/null || true; wait "$op_pid" 2>/dev/null || true; op_pid=""; fi; }
trap 'stop_operator; kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true' EXIT

kubectl apply --server-side --field-manager=oyl-fixtures -f crds/oylplatforms.oyl.dev.yaml >/dev/null
wait_condition 30 Established crd/oylplatforms.oyl.dev >/dev/null
kubectl create namespace "$NS" >/dev/null
kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null

# Objects as Argo CD sees them, minus server bookkeeping that only adds noise; the namespace is
# normalised so regenerating gives stable files.
capture() { # capture NAME FILE
  kubectl -n "$NS" get oylplatform "$1" -o json | python3 -c '
import json, sys
o = json.load(sys.stdin)
m = o["metadata"]
for k in ("managedFields", "uid", "resourceVersion", "creationTimestamp"):
    m.pop(k, None)
m["namespace"] = "oyl"
s = json.dumps(o, indent=2, sort_keys=True).replace(sys.argv[1], "oyl")
print(s)' "$NS" > "$OUT/$2"
  echo "wrote $OUT/$2" >&2
}
wait_jsonpath() { # wait_jsonpath NAME JSONPATH-EXPR VALUE
  local deadline=$(( $(date +%s) + 120 ))
  until [ "$(kubectl -n "$NS" get oylplatform "$1" -o "jsonpath=$2" 2>/dev/null)" = "$3" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $1 $2=$3; operator log: $LOG" >&2; exit 1; }
    sleep 0.5
  done
}
sample() { printf 'apiVersion: oyl.dev/v1alpha1\nkind: OylPlatform\nmetadata:\n  name: %s\nspec:\n%s\n' "$1" "$2"; }

# 1. No status yet: applied while no operator runs.
sample ready '  {}' | kubectl -n "$NS" apply -f - >/dev/null
capture ready no-status.json

# 2. The operator at work.
"$OPERATOR" run --namespace "$NS" --metrics-addr 127.0.0.1:0 2>"$LOG" &
op_pid=$!
# Ready: the minimal platform.
wait_jsonpath ready '{.status.phase}' Ready
capture ready ready.json
# Backed up: an on-demand backup (kwok completes its Job's pod), so BackupHealthy=True.
kubectl -n "$NS" annotate oylplatform ready oyl.dev/backup-now=fixture >/dev/null
wait_jsonpath ready '{.status.conditions[?(@.type=="BackupHealthy")].status}' True
capture ready backed-up.json
# Degraded: the external PostgreSQL URL points at a Secret that does not exist.
sample degraded '  postgres:
    external:
      urlSecretRef:
        name: nowhere
        key: url' | kubectl -n "$NS" apply -f - >/dev/null
wait_jsonpath degraded '{.status.phase}' Degraded
capture degraded degraded.json
# Progressing: Redis asks for a StorageClass nobody provides, so its claim and pod stay Pending.
sample progressing '  redis:
    managed:
      storage:
        storageClassName: not-provisioned' | kubectl -n "$NS" apply -f - >/dev/null
wait_jsonpath progressing '{.status.phase}' Progressing
capture progressing progressing.json

# 3. Stale: the spec changes while no operator runs, so observedGeneration < generation.
stop_operator
kubectl -n "$NS" patch oylplatform ready --type=merge -p '{"spec":{"version":"0.1.1"}}' >/dev/null
capture ready stale.json
