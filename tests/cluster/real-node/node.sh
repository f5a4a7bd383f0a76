# The real node of `up.sh --real-node`: containerd (Debian's, its own config, root, state and
# socket under $KCP_DIR), runc, the Debian CNI plugins on a bridge of its own, kubelet and
# kube-proxy (iptables mode) from the pinned Kubernetes module, CoreDNS serving cluster.local
# only, metrics-server (resource metrics for `kubectl top` and the HPA), and a storage provisioner whose volumes non-root pods can write. Sourced by up.sh and
# down.sh after lib.sh; everything it adds to the machine outside $KCP_DIR is recorded in
# $KCP_DIR/node/ and taken away by node_stop.
# shellcheck shell=bash

NODE_NAME="${KCP_NODE_NAME:-oyl-node-0}"
BRIDGE="${KCP_BRIDGE:-oyl-br0}"
# The pod range and the bridge's (the node's, CoreDNS's, the API server's) address in it.
POD_CIDR="${KCP_POD_CIDR:-10.244.0.0/24}"
NODE_IP="${KCP_NODE_IP:-10.244.0.1}"
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
KUBELET_PORT="${KCP_KUBELET_PORT:-40250}"
KUBELET_HEALTHZ_PORT="${KCP_KUBELET_HEALTHZ_PORT:-40248}"
PROXY_HEALTHZ_PORT="${KCP_PROXY_HEALTHZ_PORT:-40256}"
PROXY_METRICS_PORT="${KCP_PROXY_METRICS_PORT:-40249}"
# metrics-server's secure port on the bridge address (the API server's aggregation layer proxies
# metrics.k8s.io there).
METRICS_SERVER_PORT="${KCP_METRICS_SERVER_PORT:-40443}"
# Under a cgroup of its own in every v1 hierarchy, so that teardown removes exactly what it made.
CGROUP_ROOT="/oyl-$NODE_NAME"
N="$KCP_DIR/node"                    # configs, records of the machine's state
CTRD="$KCP_DIR/containerd"           # containerd's root, state and socket
CTRD_SOCK="$CTRD/containerd.sock"
# Kernel settings the kubelet (kernel.*, vm.*), the bridge plugin (ip_forward) or kube-proxy may
# change: recorded before, restored after each kubelet start and at teardown.
NODE_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward
  net.ipv4.conf.all.forwarding net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait)
# Paths outside $KCP_DIR that kubelet, containerd and the CNI plugins write to, whatever they are
# told: removed at teardown when they did not exist before.
NODE_HOST_PATHS=(/var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni /run/containerd
  /opt/containerd /run/netns /var/run/netns /etc/cni /opt/cni)

alive() { [ -f "$KCP_DIR/$1.pid" ] && kill -0 "$(cat "$KCP_DIR/$1.pid")" 2>/dev/null; }
kc() { kubectl --kubeconfig="$KCP_DIR/admin.kubeconfig" "$@"; }

# node_prepare: records the machine's state, then adds the bridge and the firewall. Runs before
# the API server, which listens on the bridge address too.
node_prepare() {
  [ "$(id -u)" -eq 0 ] || { echo "--real-node needs root" >&2; return 1; }
  mkdir -p "$N"
  local s p
  for s in "${NODE_SYSCTLS[@]}"; do
    printf '%s=%s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo -)"
  done > "$N/sysctls.before"
  : > "$N/created-paths"
  for p in "${NODE_HOST_PATHS[@]}"; do [ -e "$p" ] || echo "$p" >> "$N/created-paths"; done
  nft list ruleset > "$N/nft.before"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Pod traffic never leaves this machine: the only traffic forwarded is from the bridge back to
  # the bridge (a pod reaching a Service's pod); pod-range traffic to or from any other interface
  # is dropped, and so is anything else the bridge plugin's ip_forward=1 would route. A drop in
  # this base chain is final, whatever kube-proxy's chains accept later.
  nft -f - <<EOF
table inet oyl_node_guard {
  chain forward {
    type filter hook forward priority -200; policy accept;
    ip saddr $POD_CIDR oifname != "$BRIDGE" counter drop
    ip daddr $POD_CIDR iifname != "$BRIDGE" counter drop
    iifname != "$BRIDGE" counter drop
    oifname != "$BRIDGE" counter drop
  }
}
EOF
}

node_restore_sysctls() { # node_restore_sysctls [PATTERN]: the recorded values (matching PATTERN)
  local line
  while IFS= read -r line; do
    [[ "$line" =~ ${1:-.} ]] || continue
    [ "${line#*=}" = - ] || sysctl -q -w "$line" >/dev/null 2>&1 || true
  done < "$N/sysctls.before"
}

node_start() { # node_start PKI_DIR
  local P=$1
  mkdir -p "$CTRD" "$N" "$KCP_DIR/kubelet" "$KCP_DIR/pod-logs" "$KCP_DIR/cni/net.d" "$KCP_DIR/cni/ipam" "$KCP_DIR/volumes"
  # Certificates: the kubelet's serving cert (for the API server's logs/exec and metrics), the
  # node's, kube-proxy's and metrics-server's client certs, metrics-server's serving cert.
  ossl req -newkey rsa:2048 -nodes -subj "/CN=$NODE_NAME" -keyout "$P/kubelet.key" -out "$P/kubelet.csr"
  ossl x509 -req -days 7 -in "$P/kubelet.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -out "$P/kubelet.crt" \
    -extfile <(printf "subjectAltName=IP:%s,DNS:%s\nextendedKeyUsage=serverAuth" "$NODE_IP" "$NODE_NAME")
  local who
  for who in "node:system:node:$NODE_NAME/O=system:nodes" "proxy:system:kube-proxy" "metrics-server:system:metrics-server"; do
    ossl req -newkey rsa:2048 -nodes -subj "/CN=${who#*:}" -keyout "$P/${who%%:*}.key" -out "$P/${who%%:*}.csr"
    ossl x509 -req -days 7 -in "$P/${who%%:*}.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
      -out "$P/${who%%:*}.crt" -extfile <(printf "extendedKeyUsage=clientAuth")
    kubeconfig_for "$N/${who%%:*}.kubeconfig" "$P/${who%%:*}.crt" "$P/${who%%:*}.key"
  done
  ossl req -newkey rsa:2048 -nodes -subj "/CN=metrics-server" -keyout "$P/metrics-server-serving.key" -out "$P/metrics-server-serving.csr"
  ossl x509 -req -days 7 -in "$P/metrics-server-serving.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
    -out "$P/metrics-server-serving.crt" \
    -extfile <(printf "subjectAltName=DNS:metrics-server.kube-system.svc,IP:%s\nextendedKeyUsage=serverAuth" "$NODE_IP")

  stage >&2 "node: containerd $(dpkg-query -W -f '${Version}' containerd)"
  cat > "$N/containerd.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/oyl-test/pause:3.10"
  # This VM's bounding set lacks CAP_SYS_RESOURCE: the sandbox's default OOM score (-998) fails.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "$CTRD/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$KCP_DIR/cni/net.d"
    max_conf_num = 1
EOF
  cat > "$KCP_DIR/cni/net.d/10-oyl.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "oyl",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "$KCP_DIR/cni/ipam",
             "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
             "routes": [{"dst": "0.0.0.0/0"}]}
  }]
}
EOF
  start containerd containerd --config "$N/containerd.toml"
  wait_for 30 containerd ctr --address "$CTRD_SOCK" version

  stage >&2 "node: images (build or reuse, import)"
  "$CLUSTER_DIR/../images/build.sh" --import "$CTRD_SOCK" ${OYL_NODE_IMAGES:-pause postgres redis chroma} >"$N/images.env" 2>"$KCP_DIR/logs/images.log" \
    || { tail -n 30 "$KCP_DIR/logs/images.log" >&2; return 1; }

  stage >&2 "node: kubelet, kube-proxy"
  printf 'nameserver %s\n' "$DNS_IP" > "$N/resolv.conf"
  local c
  for c in /sys/fs/cgroup/*/; do
    [ -e "$c/cgroup.procs" ] && [ "$(basename "$c")" != unified ] && mkdir -p "$c$CGROUP_ROOT"
  done
  cat > "$N/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has a cgroup v1 (hybrid) hierarchy, which kubelet 1.36 refuses by default.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
containerRuntimeEndpoint: unix://$CTRD_SOCK
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $P/kubelet.crt
tlsPrivateKeyFile: $P/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: $N/resolv.conf
podLogsDirectory: $KCP_DIR/pod-logs
failSwapOn: false
# Imported images cannot be pulled again: never collect them, never evict for a full disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
protectKernelDefaults: false
serializeImagePulls: false
maxPods: 110
rotateCertificates: false
serverTLSBootstrap: false
registerNode: true
EOF
  start kubelet kubelet --config="$N/kubelet.yaml" --kubeconfig="$N/node.kubeconfig" \
    --root-dir="$KCP_DIR/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
    --node-labels=oyl.dev/real-node=true
  cat > "$N/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $N/proxy.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
clusterCIDR: $POD_CIDR
# NodePorts only on the bridge address, never on the machine's own interfaces or 127.0.0.1.
nodePortAddresses: [$NODE_IP/32]
iptables: {localhostNodePorts: false, masqueradeAll: false}
# Leave the machine's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kube-proxy kube-proxy --config="$N/kube-proxy.yaml"

  stage >&2 "node: cluster DNS (CoreDNS $COREDNS_VERSION on $NODE_IP:53, cluster.local only)"
  cat > "$N/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
  bind $NODE_IP
  errors
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig $KCP_DIR/admin.kubeconfig oyl-e2e
    pods insecure
    fallthrough in-addr.arpa ip6.arpa
  }
  cache 5
}
EOF
  start coredns coredns -conf "$N/Corefile"
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: up.sh.oyl.dev}
addressType: IPv4
endpoints:
- addresses: [$NODE_IP]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
EOF

  node_metrics_server "$P"

  stage >&2 "node: storage (local volumes that honour fsGroup)"
  kc apply -f - >/dev/null <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: oyl.dev/local-dir
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
  start provisioner "$CLUSTER_DIR/real-node/provisioner.sh" "$KCP_DIR/admin.kubeconfig" "$KCP_DIR/volumes" "$NODE_NAME"

  stage >&2 "node: waiting for $NODE_NAME to be Ready"
  wait_for 120 "node $NODE_NAME" kc wait "node/$NODE_NAME" --for=condition=Ready --timeout=2s
  # The kubelet set kernel.panic, kernel.panic_on_oops and vm.overcommit_memory at its start
  # (it has no warn-only mode); put them back. ip_forward stays as the bridge plugin sets it
  # (pods reach Services through the host's routing) until teardown.
  node_restore_sysctls '^(kernel|vm)\.'
  wait_for 60 "kube-proxy's rules" sh -c "iptables-save -t nat | grep -q KUBE-SERVICES"
  wait_for 60 "the metrics.k8s.io APIService (metrics-server)" \
    kc wait apiservice/v1beta1.metrics.k8s.io --for=condition=Available --timeout=2s
}

# node_metrics_server PKI_DIR: metrics-server as a host process on $NODE_IP:$METRICS_SERVER_PORT,
# behind the APIService v1beta1.metrics.k8s.io (the API server's aggregation layer; up.sh gives it
# the front-proxy CA and client cert). It scrapes the kubelet's /metrics/resource every 10 s as
# user system:metrics-server (client cert), verifying the kubelet's serving cert against the
# cluster CA (no --kubelet-insecure-tls); the API server verifies metrics-server's serving cert
# against the same CA (caBundle, no insecureSkipTLSVerify).
node_metrics_server() {
  local P=$1
  stage >&2 "node: metrics-server $METRICS_SERVER_VERSION on $NODE_IP:$METRICS_SERVER_PORT (APIService v1beta1.metrics.k8s.io)"
  kc apply -f - >/dev/null <<EOF
# Its own rights: read nodes and pods, scrape kubelets; delegate authentication and
# authorization of the requests it serves to the API server; read the aggregation layer's CA.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "oyl-e2e:metrics-server"}
rules:
- {apiGroups: [""], resources: [nodes/metrics], verbs: [get]}
- {apiGroups: [""], resources: [pods, nodes], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "oyl-e2e:metrics-server"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "oyl-e2e:metrics-server"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "oyl-e2e:metrics-server:auth-delegator"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "oyl-e2e:metrics-server:auth-reader", namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {k8s-app: metrics-server}
spec:
  ports:
  - {name: https, port: 443, protocol: TCP, targetPort: $METRICS_SERVER_PORT}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: metrics-server-host
  namespace: kube-system
  labels: {kubernetes.io/service-name: metrics-server, endpointslice.kubernetes.io/managed-by: up.sh.oyl.dev}
addressType: IPv4
endpoints:
- addresses: [$NODE_IP]
  conditions: {ready: true}
ports:
- {name: https, port: $METRICS_SERVER_PORT, protocol: TCP}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  service: {name: metrics-server, namespace: kube-system, port: 443}
  group: metrics.k8s.io
  version: v1beta1
  caBundle: $(base64 -w0 < "$P/ca.crt")
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
  # --metric-resolution: the shortest it allows (10 s), so the HPA sees load within seconds; the
  # kubelet request timeout must stay under 90% of it.
  start metrics-server metrics-server --kubeconfig="$N/metrics-server.kubeconfig" \
    --authentication-kubeconfig="$N/metrics-server.kubeconfig" --authorization-kubeconfig="$N/metrics-server.kubeconfig" \
    --bind-address="$NODE_IP" --secure-port="$METRICS_SERVER_PORT" \
    --tls-cert-file="$P/metrics-server-serving.crt" --tls-private-key-file="$P/metrics-server-serving.key" \
    --kubelet-certificate-authority="$P/ca.crt" --kubelet-use-node-status-port \
    --kubelet-preferred-address-types=InternalIP --metric-resolution=10s --kubelet-request-timeout=5s
}

kubeconfig_for() { # kubeconfig_for FILE CERT KEY
  kubectl config --kubeconfig="$1" set-cluster oyl-e2e --server="https://$NODE_IP:$API_PORT" --certificate-authority="$P/ca.crt" --embed-certs >/dev/null
  kubectl config --kubeconfig="$1" set-credentials u --client-certificate="$2" --client-key="$3" --embed-certs >/dev/null
  kubectl config --kubeconfig="$1" set-context c --cluster=oyl-e2e --user=u >/dev/null
  kubectl config --kubeconfig="$1" use-context c >/dev/null
}

stop_pid() { # stop_pid NAME: SIGTERM, then SIGKILL after 5 s
  local f="$KCP_DIR/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$f"
}

# node_stop: deletes every pod through the API (so the kubelet tears down their networks and
# volumes), stops the node's processes, then removes what they left: containers, mounts, network
# namespaces and interfaces, cgroups, netfilter rules, files outside $KCP_DIR; and puts the
# kernel settings back.
node_stop() {
  [ -d "$N" ] || return 0
  local api_up=false
  alive kube-apiserver && alive kubelet && kc get --raw=/readyz >/dev/null 2>&1 && api_up=true
  if $api_up; then
    # Nothing may create pods again: controllers and scheduler stop first.
    stop_pid oyl-operator; stop_pid kube-controller-manager; stop_pid kube-scheduler
    kc delete pods --all --all-namespaces --grace-period=3 --wait=false >/dev/null 2>&1
    local deadline=$(( $(date +%s) + 60 ))
    while [ -n "$(kc get pods -A -o name 2>/dev/null)" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
  fi
  stop_pid provisioner; stop_pid metrics-server; stop_pid coredns; stop_pid kube-proxy; stop_pid kubelet
  if alive containerd; then
    local ns=k8s.io id
    for id in $(ctr --address "$CTRD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr --address "$CTRD_SOCK" -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1
    done
    sleep 0.5
    for id in $(ctr --address "$CTRD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr --address "$CTRD_SOCK" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1
    done
    for id in $(ctr --address "$CTRD_SOCK" -n "$ns" containers ls -q 2>/dev/null); do
      ctr --address "$CTRD_SOCK" -n "$ns" containers delete "$id" >/dev/null 2>&1
    done
  fi
  stop_pid containerd
  # Shims of this containerd that outlived it (their command line names its socket).
  local pid
  for pid in $(pgrep -f -- "-address $CTRD_SOCK" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  # Network namespaces the CRI made (cni-*), then mounts under the cluster directory, deepest first.
  local m
  for m in /run/netns/cni-*; do
    [ -e "$m" ] || continue
    umount "$m" 2>/dev/null; rm -f "$m"
  done
  for _ in 1 2 3; do
    awk -v d="$KCP_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
  done
  # Interfaces: the veths on the bridge (gone with their namespaces, normally), then the bridge.
  for m in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$m" 2>/dev/null
  done
  ip link del "$BRIDGE" 2>/dev/null
  # cgroups: every v1 hierarchy's subtree under CGROUP_ROOT, deepest first.
  for c in /sys/fs/cgroup/*/; do
    [ -d "$c${CGROUP_ROOT#/}" ] || continue
    find "$c${CGROUP_ROOT#/}" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  # Netfilter: back to the recorded ruleset (kubelet's and kube-proxy's KUBE-* chains, the
  # tables iptables-nft created, the guard table).
  if [ -f "$N/nft.before" ]; then
    nft flush ruleset && nft -f "$N/nft.before"
  fi
  [ -f "$N/sysctls.before" ] && node_restore_sysctls
  if [ -f "$N/created-paths" ]; then
    while read -r m; do
      [ -n "$m" ] || continue
      findmnt -rn -o TARGET | grep -q "^$m" && continue   # still mounted: leave it, report below
      rm -rf "$m"
    done < "$N/created-paths"
  fi
  local left
  left="$(awk -v d="$KCP_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo)"
  [ -z "$left" ] || echo "still mounted under $KCP_DIR: $left" >&2
}
