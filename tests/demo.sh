#!/usr/bin/env bash
# The main job in one command.
#   tests/demo.sh              builds what is missing (the Kubernetes binaries on first use, the
#                              operator), starts the local control plane with kwok (simulated
#                              pods), installs the CRD, runs the operator as a process, applies
#                              the minimal sample and watches `kubectl get oyl` reach Ready.
#   tests/demo.sh --real-node  (root) the control plane with a real node (up.sh --real-node):
#                              builds and imports the images, installs the operator with its
#                              chart from the local image, applies the minimal sample with the
#                              local images, waits for Ready, checks the API from this machine
#                              and prints its URL as the last line.
# Everything keeps running afterwards; `tests/cluster/down.sh` stops it all. A second run reuses
# the running cluster and the cached images. Honours OYL_CACHE, CARGO_TARGET_DIR, KCP_* and
# (--real-node) OYL_RELEASE_DIR.
set -euo pipefail
usage="usage: tests/demo.sh [--real-node]
  (no argument)  local control plane, kwok simulates the pods, the operator runs as a process
  --real-node    (root) a real node runs every container; the operator is installed with its
                 chart; the last line printed is the URL of the platform's API"
real_node=false
for arg in "$@"; do
  case "$arg" in
    --real-node) real_node=true ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
# Before anything is built: the real node needs root (containerd, kubelet, the bridge, images).
if $real_node && [ "$(id -u)" -ne 0 ]; then
  echo "tests/demo.sh --real-node needs root (it runs containerd, the kubelet and a network bridge)" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
. tests/cluster/lib.sh

# restricted_namespace NAME: a namespace enforcing the `restricted` Pod Security Standard.
restricted_namespace() {
  kubectl apply -f - <<NS
apiVersion: v1
kind: Namespace
metadata:
  name: $1
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
NS
}

if $real_node; then
  ns=oyl
  stage "starting the control plane and the real node (builds its tools on first use)"
  KUBECONFIG="$(tests/cluster/up.sh --real-node | tail -n 1)"
  export KUBECONFIG PATH="$TOOLS_PATH:$PATH"

  stage "building and importing the images (cached by recipe; Oyl binaries from ${OYL_RELEASE_DIR:-cargo build --release})"
  imported="$(OYL_E2E_REAL_NODE_KUBECONFIG="$KUBECONFIG" \
    tests/cluster/real-node/import-images.sh pause postgres redis chroma oyl-operator oyl-server)"
  declare -A image=()
  while IFS='=' read -r name reference; do image[$name]=$reference; done <<<"$imported"
  for name in pause postgres redis chroma oyl-operator oyl-server; do
    [ -n "${image[$name]:-}" ] || { echo "import-images.sh printed no reference for $name" >&2; exit 1; }
  done
  printf '%s\n' "$imported"

  stage "installing the operator with its chart in oyl-system (image ${image[oyl-operator]})"
  restricted_namespace oyl-system
  helm upgrade --install oyl-operator charts/oyl-operator --namespace oyl-system --wait --timeout 300s \
    --set image.repository="${image[oyl-operator]%:*}" --set image.tag="${image[oyl-operator]##*:}" \
    --set image.pullPolicy=Never --hide-notes
  wait_condition 60 Established crd/oylplatforms.oyl.dev
  kubectl get deployment oyl-operator -n oyl-system

  stage "applying config/samples/oylplatform-minimal.yaml in namespace $ns, with the local images"
  restricted_namespace "$ns"
  local_images="$(cat <<JSON
{"spec": {
  "api": {"image": "${image[oyl-server]}", "imagePullPolicy": "Never"},
  "postgres": {"managed": {"image": "${image[postgres]}"}},
  "redis": {"managed": {"image": "${image[redis]}"}},
  "chroma": {"managed": {"image": "${image[chroma]}"}}
}}
JSON
)"
  kubectl patch --local -f config/samples/oylplatform-minimal.yaml --type merge -p "$local_images" -o yaml \
    | kubectl apply -n "$ns" -f -
  kubectl get oyl demo -n "$ns"
  # PostgreSQL's initdb, ChromaDB's start and the API's migrations, on a busy 2-core machine.
  wait_condition 600 Ready oylplatform/demo -n "$ns"
  kubectl get oyl,deployments,pods,services,pvc -n "$ns"

  stage "asking the API through its Service from this machine"
  ip="$(kubectl get service demo-api -n "$ns" -o jsonpath='{.spec.clusterIP}')"
  port="$(kubectl get service demo-api -n "$ns" -o jsonpath='{.spec.ports[0].port}')"
  url="http://$ip:$port"
  deadline=$(( $(date +%s) + 60 ))
  until health="$(curl -fsS --max-time 5 "$url/health" 2>&1)" && readyz="$(curl -fsS --max-time 5 "$url/readyz" 2>&1)"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "no answer from $url/health and $url/readyz within 60s: ${readyz:-$health}" >&2
      exit 1
    fi
    sleep 1
  done
  echo "GET $url/health: $health"
  echo "GET $url/readyz: $readyz"
  stage "done"
  kcp_env="$(env | grep '^KCP_' | sort | tr '\n' ' ' || true)"
  cat <<MSG

The platform is Ready on the real node: every container runs (containerd, runc), readiness
came from the real probes, and its API answers from this machine on the Service's cluster IP.
  export KUBECONFIG=$KUBECONFIG PATH=$TOOLS_PATH:\$PATH
  kubectl get oyl,pods -n $ns                                       # the platform, its pods
  kubectl exec -n $ns deploy/demo-api -- oyl-server token --admin   # an admin token
  curl -s $url/health; open $url/docs for Swagger UI
To stop everything and remove what the node added to this machine:
  ${kcp_env}tests/cluster/down.sh
MSG
  echo "$url"
  exit 0
fi

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
