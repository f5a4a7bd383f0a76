#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC, Pod Security
# admission), kube-controller-manager (garbage collector, Deployments, Jobs, HPA...),
# kube-scheduler and kwok with one fake node that makes scheduled pods Ready.
#   up.sh              the control plane and kwok (simulated pods)
#   up.sh --real-node  the control plane and a real node instead of kwok: every container runs
#                      (root only; real-node/node.sh says what it runs and what it changes)
# Idempotent: when it already runs, it only prints the kubeconfig. The last line of output is
# the kubeconfig's path. Stop it with down.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
real_node=false
for arg in "$@"; do
  case "$arg" in
    --real-node) real_node=true ;;
    *) echo "usage: up.sh [--real-node]" >&2; exit 2 ;;
  esac
done
if $real_node; then "$CLUSTER_DIR/build-tools.sh" --real-node >&2; else "$CLUSTER_DIR/build-tools.sh" >&2; fi
export PATH="$TOOLS_PATH:$COREDNS_BIN:$METRICS_SERVER_BIN:$PATH"
D="$KCP_DIR"; P="$D/pki"; K="$D/admin.kubeconfig"
API_PORT="${KCP_API_PORT:-16443}"; ETCD_PORT="${KCP_ETCD_PORT:-12379}"; ETCD_PEER_PORT=$((ETCD_PORT + 1))
# shellcheck source=real-node/node.sh
. "$CLUSTER_DIR/real-node/node.sh"
# Where the API server listens: loopback, or with a real node the bridge address (which pods
# reach through the `kubernetes` Service, and this machine reaches as one of its own addresses).
API_HOST=127.0.0.1
$real_node && API_HOST="$NODE_IP"

ready() { [ -f "$K" ] && kubectl --kubeconfig="$K" get --raw=/readyz >/dev/null 2>&1; }
alive() { [ -f "$D/$1.pid" ] && kill -0 "$(cat "$D/$1.pid")" 2>/dev/null; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "timed out waiting for $what; logs in $D/logs" >&2; tail -n 20 "$D"/logs/*.log >&2 || true; exit 1
    fi
    sleep 0.3
  done
}
start() { # start NAME COMMAND...: a detached process whose pid is kept for down.sh
  local name=$1; shift
  setsid "$@" >"$D/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$D/$name.pid"
}

workers="kwok"; $real_node && workers="containerd kubelet kube-proxy coredns metrics-server provisioner"
running=true
for name in etcd kube-apiserver kube-controller-manager kube-scheduler $workers; do alive "$name" || running=false; done
if $running && ready; then
  echo "control plane already running" >&2; echo "$K"; exit 0
fi
"$CLUSTER_DIR/down.sh" >/dev/null 2>&1 || true
t0=$(date +%s)
mkdir -p "$D"/{pki,etcd,logs}
if $real_node; then
  stage >&2 "node: bridge $BRIDGE ($NODE_IP, pods $POD_CIDR), firewall, recorded machine state"
  node_prepare
fi
stage >&2 "control plane: PKI, etcd, kube-apiserver on $API_HOST:$API_PORT"

# PKI: a CA, the apiserver's serving cert, an admin client cert (system:masters), the SA key pair.
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=oyl-e2e-ca" -keyout "$P/ca.key" -out "$P/ca.crt"
ossl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$P/apiserver.key" -out "$P/apiserver.csr"
ossl x509 -req -days 7 -in "$P/apiserver.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -out "$P/apiserver.crt" \
  -extfile <(printf "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth")
ossl req -newkey rsa:2048 -nodes -subj "/CN=admin/O=system:masters" -keyout "$P/admin.key" -out "$P/admin.csr"
ossl x509 -req -days 7 -in "$P/admin.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -out "$P/admin.crt" \
  -extfile <(printf "extendedKeyUsage=clientAuth")
ossl genrsa -out "$P/sa.key" 2048; ossl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub"
# The aggregation layer (real node: metrics-server's metrics.k8s.io): a CA of its own for the
# requests the API server proxies to an extension API server, and the client cert it proxies with.
if $real_node; then
  ossl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=oyl-e2e-front-proxy-ca" -keyout "$P/front-proxy-ca.key" -out "$P/front-proxy-ca.crt"
  ossl req -newkey rsa:2048 -nodes -subj "/CN=front-proxy-client" -keyout "$P/front-proxy-client.key" -out "$P/front-proxy-client.csr"
  ossl x509 -req -days 7 -in "$P/front-proxy-client.csr" -CA "$P/front-proxy-ca.crt" -CAkey "$P/front-proxy-ca.key" -CAcreateserial \
    -out "$P/front-proxy-client.crt" -extfile <(printf "extendedKeyUsage=clientAuth")
fi
kubectl config --kubeconfig="$K" set-cluster oyl-e2e --server="https://$API_HOST:$API_PORT" --certificate-authority="$P/ca.crt" --embed-certs >/dev/null
kubectl config --kubeconfig="$K" set-credentials admin --client-certificate="$P/admin.crt" --client-key="$P/admin.key" --embed-certs >/dev/null
kubectl config --kubeconfig="$K" set-context oyl-e2e --cluster=oyl-e2e --user=admin >/dev/null
kubectl config --kubeconfig="$K" use-context oyl-e2e >/dev/null

start etcd etcd --name=n0 --data-dir="$D/etcd" --unsafe-no-fsync \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="n0=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls="" \
  --quota-backend-bytes=2147483648 --auto-compaction-retention=1
wait_for 30 etcd curl -fs "http://127.0.0.1:$ETCD_PORT/health"

# --advertise-address/--endpoint-reconciler-type: a loopback address cannot go into the
# `kubernetes` Endpoints, and there is no default route to derive one from. With a real node the
# bridge address can: pods reach the API server through the `kubernetes` Service, and the API
# server reaches the kubelet (logs, exec, port-forward) with the admin client certificate.
api_flags=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none)
$real_node && api_flags=(--bind-address="$NODE_IP" --advertise-address="$NODE_IP" --endpoint-reconciler-type=lease
  --kubelet-client-certificate="$P/admin.crt" --kubelet-client-key="$P/admin.key"
  --kubelet-preferred-address-types=InternalIP
  --requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group
  --requestheader-extra-headers-prefix=X-Remote-Extra-
  --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key"
  --enable-aggregator-routing=true
  --audit-policy-file="$D/audit-policy.yaml" --audit-log-path="$D/logs/audit.log" --audit-log-format=json)
# The real node's audit log: every write to a Deployment or its scale subresource, with who made
# it and its body (tests/e2e/real_node_hpa.rs counts the operator's and the HPA's writes).
if $real_node; then
  cat > "$D/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Request
  verbs: [create, update, patch]
  resources: [{group: apps, resources: [deployments, deployments/scale]}]
- level: None
POLICY
fi
start kube-apiserver kube-apiserver --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  "${api_flags[@]}" --secure-port="$API_PORT" --cert-dir="$P" \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC --allow-privileged=false \
  --profiling=false --enable-priority-and-fairness=false
wait_for 120 kube-apiserver kubectl --kubeconfig="$K" get --raw=/readyz

# --horizontal-pod-autoscaler-downscale-stabilization (real node, where metrics-server makes the
# HPA really scale): an HPA without `behavior` (the operator's: the CRD has no such field) waits
# out this window before it scales down; the default 5 min would make a scale-down test wait 5 min.
kcm_flags=()
$real_node && kcm_flags=(--horizontal-pod-autoscaler-downscale-stabilization=30s)
# --kube-api-qps/burst: the default client limit (20 requests/s) throttled the volumes and pods
# of many platforms created at once for minutes (BENCHMARKS.md, operator).
start kube-controller-manager kube-controller-manager --kubeconfig="$K" \
  --authentication-kubeconfig="$K" --authorization-kubeconfig="$K" \
  --bind-address=127.0.0.1 --secure-port="${KCP_KCM_PORT:-10257}" --leader-elect=false \
  --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics \
  --root-ca-file="$P/ca.crt" --service-account-private-key-file="$P/sa.key" \
  --use-service-account-credentials=false --controllers='*' \
  --concurrent-gc-syncs=5 --horizontal-pod-autoscaler-sync-period=5s \
  --enable-hostpath-provisioner \
  --kube-api-qps=200 --kube-api-burst=400 "${kcm_flags[@]}"
start kube-scheduler kube-scheduler --kubeconfig="$K" \
  --authentication-kubeconfig="$K" --authorization-kubeconfig="$K" \
  --bind-address=127.0.0.1 --secure-port="${KCP_SCHEDULER_PORT:-10259}" --leader-elect=false
if $real_node; then
  node_start "$P"
  wait_for 60 "the default ServiceAccount" kubectl --kubeconfig="$K" -n default get serviceaccount default
  stage >&2 "real node ready in $(( $(date +%s) - t0 ))s (logs: $D/logs)"
  echo "$K"
  exit 0
fi
start kwok kwok --kubeconfig="$K" --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --cidr=10.244.0.0/16 --node-ip=10.0.0.1 --node-lease-duration-seconds=40 --server-address=""

kubectl --kubeconfig="$K" apply -f "$CLUSTER_DIR/kwok-node.yaml" >/dev/null
# Volumes: kube-controller-manager's hostPath provisioner (test-only, single node) backs a default
# StorageClass that deletes volumes with their claims. Nothing ever writes to them: pods are
# simulated by kwok.
kubectl --kubeconfig="$K" apply -f - >/dev/null <<'SC'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
SC
wait_for 60 "the kwok node" kubectl --kubeconfig="$K" wait node/kwok-node-0 --for=condition=Ready --timeout=2s
wait_for 60 "the default ServiceAccount" kubectl --kubeconfig="$K" -n default get serviceaccount default
echo "control plane ready in $(( $(date +%s) - t0 ))s (logs: $D/logs)" >&2
echo "$K"
