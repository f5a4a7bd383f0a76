#!/usr/bin/env bash
# The main job in one command: build what is missing (the Kubernetes binaries on first use,
# the operator), start the local control plane, install the CRD, run the operator, apply the
# minimal sample and watch `kubectl get oyl` reach Ready. Everything keeps running afterwards;
# `tests/cluster/down.sh` stops it all. Honours OYL_CACHE and CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/cluster/lib.sh

stage "building the operator"
cargo build -p oyl-operator
stage "starting the local control plane (builds its tools on first use)"
KUBECONFIG="$(tests/cluster/up.sh | tail -n 1)"
export KUBECONFIG PATH="$TOOLS_PATH:$PATH"

stage "installing the CRD and starting the operator (log: $KCP_DIR/logs/oyl-operator.log)"
kubectl apply --server-side -f crds/oylplatforms.oyl.dev.yaml
# A CRD applied a moment ago may have no status yet: wait_condition tolerates that.
wait_condition 60 Established crd/oylplatforms.oyl.dev
if ! { [ -f "$KCP_DIR/oyl-operator.pid" ] && kill -0 "$(cat "$KCP_DIR/oyl-operator.pid")" 2>/dev/null; }; then
  setsid "$TARGET_DIR/debug/oyl-operator" run --log-text --metrics-addr 127.0.0.1:18080 \
    >"$KCP_DIR/logs/oyl-operator.log" 2>&1 </dev/null &
  echo $! >"$KCP_DIR/oyl-operator.pid"
fi

stage "applying config/samples/oylplatform-minimal.yaml"
kubectl apply -f config/samples/oylplatform-minimal.yaml
kubectl get oyl demo
wait_condition 120 Ready oylplatform/demo
kubectl get oyl,deployments,services,pvc,hpa,cronjobs -l app.kubernetes.io/instance=demo
kubectl get oyl
stage "done"
cat <<MSG

The platform is Ready (pods are simulated by kwok: nothing pulls images here).
  export KUBECONFIG=$KUBECONFIG PATH=$TOOLS_PATH:\$PATH
  kubectl get oyl demo -o yaml          # status, conditions, components
  curl -s localhost:18080/metrics       # the operator's metrics
  tests/cluster/down.sh                 # stop everything
MSG
