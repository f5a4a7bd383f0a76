#!/usr/bin/env bash
# Operator benchmark on the local control plane (tests/cluster/up.sh: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok): time from `kubectl apply` to every child
# created and to Ready, for 1 platform and for PLATFORMS (100) at once; the API requests the
# operator makes in steady state over STEADY (300) s and in RESTART (120) s after a restart;
# operator peak RSS and CPU time. Beside it, the baseline of issue 19 (item 5): the same children
# of PLATFORMS platforms, rendered by `oyl-operator render` and server-side applied directly by a
# plain client (src/bin/kapply.rs, 16 requests at a time), until kwok has made every Deployment
# ready: how long the control plane alone needs for them, and the ratio of the two.
#
#   tests/bench/operator.sh
#   PLATFORMS=1000 tests/bench/operator.sh                         # issue 19, item 5
#   PLATFORMS=20 STEADY=60 RUNS_ONE=1 tests/bench/operator.sh     # a quicker look
#
# How it measures: the operator (release build, its own namespace, the shipped ClusterRole bound
# to its ServiceAccount, as in the e2e tests) talks to the apiserver through kproxy
# (src/bin/kproxy.rs), a counting reverse proxy that logs every request it forwards: time,
# verb, resource, status, and the phase of status writes. So the counts are the operator's and
# no one else's (the control plane is shared; apiserver_request_total has no per-client label),
# "children created" is the time of the last 201 answer to the operator's apply of a child, and
# "Ready" the time the operator wrote phase Ready (checked with kubectl at the end). The
# steady-state window starts SETTLE (30) s after the last platform is Ready.
# Peak RSS is the operator's VmHWM; CPU time its utime+stime from /proc.
#
# The platforms themselves are applied with the same client (as many at a time), so the two
# paths differ only in who makes the children.
#
# Environment: PLATFORMS (100), STEADY (300; 0 skips the steady state and the restart), SETTLE
# (30), RESTART (120), RUNS_ONE (3: runs of the 1-platform case), DIRECT (1; 0 skips the
# baseline), DEADLINE (600 + 2 s per platform), OYL_OPERATOR_BIN (skip the release build), OUT,
# KEEP_NAMESPACES (0).
# The control plane is started if needed and left running (other users share it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PLATFORMS=${PLATFORMS:-100}
STEADY=${STEADY:-300}
SETTLE=${SETTLE:-30}
RUNS_ONE=${RUNS_ONE:-3}
RESTART=${RESTART:-120}
DIRECT=${DIRECT:-1}
DEADLINE=${DEADLINE:-$((600 + 2 * PLATFORMS))}
KEEP_NAMESPACES=${KEEP_NAMESPACES:-0}
start_results operator

ensure_apt_tools jq:jq curl:curl
build_helpers
OPERATOR_BIN="$(release_bin oyl-operator oyl-operator "${OYL_OPERATOR_BIN:-}")"
KUBECONFIG="$("$REPO_ROOT/tests/cluster/up.sh" | tail -n1)"; export KUBECONFIG
. "$REPO_ROOT/tests/cluster/lib.sh"
export PATH="$TOOLS_PATH:$PATH"
machine_facts | tee "$OUT/machine.txt" >&2
echo "control plane: Kubernetes $K8S_VERSION, kwok $KWOK_VERSION (simulated pods), etcd $ETCD_VERSION" | tee -a "$OUT/machine.txt" >&2

SERVER=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
CA="$OUT/ca.crt"
kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$CA"

record() { printf '%s\t%s\n' "$1" "$2" >>"$RESULTS"; log "$1: $2"; }
now() { date +%s.%N; }

# Capacity: the control plane has one fake node of 64 CPUs (tests/cluster/kwok-node.yaml), and a
# default platform requests 0.7 CPU (PostgreSQL 250m, ChromaDB 250m, Redis 100m, API 100m), so 100
# platforms do not fit on it: their last pods would stay Pending ("Insufficient cpu") and never be
# Ready. Add fake nodes kwok-node-bench-1..K (one per 80 platforms), the same as the first. They
# are left in place: other users' pods may run on them by then, and they cost nothing.
for ((i = 1; i <= (PLATFORMS + 79) / 80; i++)); do
  sed "s/kwok-node-0/kwok-node-bench-$i/g" "$REPO_ROOT/tests/cluster/kwok-node.yaml" | kubectl apply -f - >/dev/null
  wait_condition 60 Ready "node/kwok-node-bench-$i" >/dev/null
done
echo "nodes: $(kubectl get nodes --no-headers | wc -l) fake (kwok) nodes of 64 CPUs" | tee -a "$OUT/machine.txt" >&2

# The CRD of the binary under test and the shipped ClusterRole, applied as the e2e tests do.
"$OPERATOR_BIN" crd | kubectl apply --server-side --force-conflicts --field-manager oyl-e2e -f - >/dev/null
wait_condition 60 Established crd/oylplatforms.oyl.dev >/dev/null
kubectl apply --server-side --force-conflicts --field-manager oyl-e2e -f "$REPO_ROOT/config/rbac/cluster_role.yaml" >/dev/null

# Children of one default platform, as the operator renders them.
sample=$(mktemp); printf 'apiVersion: oyl.dev/v1alpha1\nkind: OylPlatform\nmetadata:\n  name: p\nspec: {}\n' >"$sample"
CHILDREN=$("$OPERATOR_BIN" render -f "$sample" -n bench | grep -c '^kind:')
rm -f "$sample"
echo "children per default platform: $CHILDREN ($("$OPERATOR_BIN" render -f <(printf 'apiVersion: oyl.dev/v1alpha1\nkind: OylPlatform\nmetadata:\n  name: p\nspec: {}\n') -n bench | sed -n 's/^kind: //p' | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}'))" | tee -a "$OUT/machine.txt" >&2

NAMESPACES=()
OPERATOR_PID= PROXY_PID=
cleanup() {
  [ -n "$OPERATOR_PID" ] && kill "$OPERATOR_PID" 2>/dev/null
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
  if [ "$KEEP_NAMESPACES" != 1 ]; then
    for ns in "${NAMESPACES[@]}"; do kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; done
  fi
}
trap cleanup EXIT

# A namespace for the bench, with a client ServiceAccount (cluster-admin, in this namespace only) whose token
# kapply uses: CLIENT_TOKEN is its file.
bench_namespace() { # bench_namespace NAMESPACE
  local ns=$1
  NAMESPACES+=("$ns")
  kubectl create namespace "$ns" >/dev/null
  kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest oyl.dev/bench=true >/dev/null
  kubectl -n "$ns" create serviceaccount bench-client >/dev/null
  kubectl -n "$ns" create rolebinding bench-client --clusterrole=cluster-admin --serviceaccount="$ns:bench-client" >/dev/null
  CLIENT_TOKEN="$OUT/$ns.client-token"
  kubectl -n "$ns" create token bench-client --duration=4h >"$CLIENT_TOKEN"
}

# kapply NAMESPACE FILE: server-side applies FILE's objects as the bench client; prints kapply's JSON.
kapply() {
  "$BENCH_BIN/kapply" --server "$SERVER" --ca "$CA" --token-file "$CLIENT_TOKEN" --namespace "$1" \
    --objects "$2" --concurrency 16 --deadline "$DEADLINE"
}

# A namespace with the operator's ServiceAccount bound to the shipped ClusterRole, the counting
# proxy and the operator (through the proxy, with the ServiceAccount's token).
start_operator() { # start_operator NAMESPACE
  local ns=$1
  bench_namespace "$ns"
  kubectl -n "$ns" create serviceaccount oyl-operator >/dev/null
  kubectl -n "$ns" create rolebinding oyl-operator --clusterrole=oyl-operator --serviceaccount="$ns:oyl-operator" >/dev/null
  PROXY_LOG="$OUT/$ns.requests.jsonl"
  run_operator "$ns"
}

# The proxy and the operator in an existing namespace (again after stop_operator: a restart).
run_operator() { # run_operator NAMESPACE
  local ns=$1 token proxy_port metrics_port
  token=$(kubectl -n "$ns" create token oyl-operator --duration=4h)
  proxy_port=$(free_port)
  "$BENCH_BIN/kproxy" serve --listen "127.0.0.1:$proxy_port" --upstream "$SERVER" --ca "$CA" --log "$PROXY_LOG" \
    2>>"$OUT/$ns.kproxy.log" & PROXY_PID=$!
  cat >"$OUT/$ns.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: bench, cluster: {server: "http://127.0.0.1:$proxy_port"}}]
users: [{name: operator, user: {token: "$token"}}]
contexts: [{name: bench, context: {cluster: bench, user: operator, namespace: "$ns"}}]
current-context: bench
KC
  metrics_port=$(free_port)
  OPERATOR_METRICS="http://127.0.0.1:$metrics_port/metrics"
  KUBECONFIG="$OUT/$ns.kubeconfig" "$OPERATOR_BIN" run --namespace "$ns" --metrics-addr "127.0.0.1:$metrics_port" \
    2>>"$OUT/$ns.operator.log" & OPERATOR_PID=$!
  wait_http "http://127.0.0.1:$metrics_port/readyz" 60 || { tail "$OUT/$ns.operator.log" >&2; die "the operator did not become ready"; }
  sleep 1
}

stop_operator() {
  kill "$OPERATOR_PID" 2>/dev/null; wait "$OPERATOR_PID" 2>/dev/null || true; OPERATOR_PID=
  kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=
}

manifests() { # manifests N: N default platforms p000, p001, ...
  local i
  for ((i = 0; i < $1; i++)); do
    printf -- '---\napiVersion: oyl.dev/v1alpha1\nkind: OylPlatform\nmetadata:\n  name: p%03d\nspec: {}\n' "$i"
  done
}

# apply_and_wait N LABEL: applies N platforms at once, waits until the operator has written Ready
# for all of them; records the timings. Sets T_READY (UNIX time the last one was Ready).
apply_and_wait() {
  local n=$1 label=$2 t0 timings deadline
  manifests "$n" >"$OUT/platforms-$n.yaml"
  t0=$(now)
  kapply "$NS" "$OUT/platforms-$n.yaml" >/dev/null || die "applying the platforms failed"
  record "$label: the apply itself (s)" "$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')"
  deadline=$(( $(date +%s) + DEADLINE ))
  while :; do
    timings=$("$BENCH_BIN/kproxy" timings --log "$PROXY_LOG" --since "$t0" --children "$CHILDREN" --platforms "$n")
    [ "$(echo "$timings" | jq -r .all_ready_s)" != null ] && break
    [ "$(date +%s)" -lt "$deadline" ] || { echo "$timings" >&2; kubectl -n "$NS" get oylplatforms >&2; die "platforms not Ready after $DEADLINE s"; }
    sleep 1
  done
  echo "$timings" >"$OUT/$NS.timings.json"
  record "$label: apply -> first child created (s)" "$(echo "$timings" | jq -r .first_write_s)"
  record "$label: apply -> all children created (s)" "$(echo "$timings" | jq -r '.all_children_created_s // "nan"')"
  record "$label: apply -> first Ready (s)" "$(echo "$timings" | jq -r .first_ready_s)"
  record "$label: apply -> all Ready (s)" "$(echo "$timings" | jq -r .all_ready_s)"
  T_READY=$(awk -v a="$t0" -v r="$(echo "$timings" | jq -r .all_ready_s)" 'BEGIN {printf "%.3f", a + r}')
  # The operator's requests from the apply to the last Ready, per platform.
  local ramp
  ramp=$("$BENCH_BIN/kproxy" summary --log "$PROXY_LOG" --from "$t0" --to "$T_READY")
  echo "$ramp" | jq . >"$OUT/$NS.ramp.json"
  record "$label: operator requests per platform, apply -> all Ready" "$(echo "$ramp" | jq --argjson n "$n" '.total / $n')"
  record "$label: operator writes per platform, apply -> all Ready" "$(echo "$ramp" | jq --argjson n "$n" '.writes / $n')"
  # Cross-check with the API: every platform says Ready.
  local ready
  ready=$(kubectl -n "$NS" get oylplatforms -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Ready$' || true)
  [ "$ready" -eq "$n" ] || log "warning: kubectl shows $ready of $n platforms Ready"
}

suffix() { printf '%04x' $(( RANDOM % 65536 )); }

# Namespaces of earlier runs are deleted in the background (hundreds of pods for the garbage
# collector and kwok): wait until they are gone, so their deletion does not load the control plane
# during a measurement.
wait_namespaces_gone() {
  local i
  for ((i = 0; i < 300; i++)); do
    kubectl get namespaces -l oyl.dev/bench=true \
      -o jsonpath='{range .items[?(@.status.phase=="Terminating")]}{.metadata.name}{"\n"}{end}' 2>/dev/null | grep -q . || return 0
    sleep 2
  done
  log "warning: bench namespaces still terminating after 600 s"
}
wait_namespaces_gone

# 1. One platform (RUNS_ONE times, a fresh namespace and operator each).
for ((run = 1; run <= RUNS_ONE; run++)); do
  NS="oyl-bench-1-$(suffix)"
  start_operator "$NS"
  apply_and_wait 1 "1 platform"
  record "1 platform: operator peak RSS (MiB)" "$(rss_peak_mb "$OPERATOR_PID")"
  stop_operator
  [ "$KEEP_NAMESPACES" = 1 ] || kubectl delete namespace "$NS" --wait=false >/dev/null
  wait_namespaces_gone
done

# 2. The control plane alone: the same children, rendered and applied directly (no operator).
if [ "$DIRECT" = 1 ]; then
  wait_namespaces_gone
  NS="oyl-bench-direct-$PLATFORMS-$(suffix)"
  bench_namespace "$NS"
  log "rendering the children of $PLATFORMS platforms"
  for ((i = 0; i < PLATFORMS; i++)); do
    printf 'apiVersion: oyl.dev/v1alpha1\nkind: OylPlatform\nmetadata:\n  name: p%03d\nspec: {}\n' "$i" |
      "$OPERATOR_BIN" render -f - -n "$NS"
  done >"$OUT/direct-children.yaml"
  direct=$(kapply "$NS" "$OUT/direct-children.yaml") || { echo "$direct" >&2; die "the direct apply failed or was not ready after $DEADLINE s"; }
  echo "$direct" >"$OUT/direct.json"
  record "direct, $PLATFORMS platforms: objects applied" "$(echo "$direct" | jq -r .objects)"
  record "direct, $PLATFORMS platforms: start -> all children applied (s)" "$(echo "$direct" | jq -r .all_applied_s)"
  record "direct, $PLATFORMS platforms: start -> all Deployments ready (s)" "$(echo "$direct" | jq -r .all_ready_s)"
  record "direct, $PLATFORMS platforms: requests retried (429 from the apiserver)" "$(echo "$direct" | jq -r .retries)"
  [ "$KEEP_NAMESPACES" = 1 ] || kubectl delete namespace "$NS" --wait=false >/dev/null
fi

# 3. PLATFORMS platforms at once through the operator, then the steady state and a restart.
wait_namespaces_gone
NS="oyl-bench-$PLATFORMS-$(suffix)"
start_operator "$NS"
cpu0=$(cpu_seconds "$OPERATOR_PID")
apply_and_wait "$PLATFORMS" "$PLATFORMS platforms"
if [ "$DIRECT" = 1 ]; then
  record "ratio: operator all Ready / direct all ready" "$(awk -v a="$(jq -r .all_ready_s "$OUT/$NS.timings.json")" \
    -v b="$(echo "$direct" | jq -r .all_ready_s)" 'BEGIN {printf "%.2f", a / b}')"
fi
record "$PLATFORMS platforms: operator CPU time, apply -> all Ready (s)" "$(awk -v a="$cpu0" -v b="$(cpu_seconds "$OPERATOR_PID")" 'BEGIN {printf "%.2f", b - a}')"
record "$PLATFORMS platforms: operator peak RSS until all Ready (MiB)" "$(rss_peak_mb "$OPERATOR_PID")"
if [ "$STEADY" = 0 ]; then
  record "operator peak RSS, whole run with $PLATFORMS platforms (MiB)" "$(rss_peak_mb "$OPERATOR_PID")"
  stop_operator
  "$BENCH_DIR/report.sh" operator "$OUT"
  exit 0
fi
log "steady state: settling ${SETTLE}s, then counting requests for ${STEADY}s"
sleep "$SETTLE"
peak_ramp=$(rss_peak_mb "$OPERATOR_PID")
t_s=$(now); cpu_s=$(cpu_seconds "$OPERATOR_PID"); rss_reset "$OPERATOR_PID"
reconciles0=$(curl -fs "$OPERATOR_METRICS" | awk '/^controller_runtime_reconcile_total/ {s += $NF} END {print s + 0}')
sleep "$STEADY"
t_e=$(now)
reconciles1=$(curl -fs "$OPERATOR_METRICS" | awk '/^controller_runtime_reconcile_total/ {s += $NF} END {print s + 0}')
summary=$("$BENCH_BIN/kproxy" summary --log "$PROXY_LOG" --from "$t_s" --to "$t_e")
echo "$summary" | jq . >"$OUT/steady-state.json"
# Per platform, scaled to 5 minutes (exact when STEADY=300).
per() { awk -v v="$1" -v n="$PLATFORMS" -v s="$STEADY" 'BEGIN {printf "%.2f", v / n * 300 / s}'; }
record "steady state: window (s)" "$STEADY"
record "steady state: requests per platform in 5 min" "$(per "$(echo "$summary" | jq .total)")"
record "steady state: reads per platform in 5 min" "$(per "$(echo "$summary" | jq .reads)")"
record "steady state: writes per platform in 5 min" "$(per "$(echo "$summary" | jq .writes)")"
record "steady state: reconciles per platform in 5 min" "$(per "$(( reconciles1 - reconciles0 ))")"
record "steady state: operator CPU time over the window (s)" "$(awk -v a="$cpu_s" -v b="$(cpu_seconds "$OPERATOR_PID")" 'BEGIN {printf "%.2f", b - a}')"
record "steady state: operator peak RSS (MiB)" "$(rss_peak_mb "$OPERATOR_PID")"
record "operator peak RSS, whole run with $PLATFORMS platforms (MiB)" "$(awk -v a="$peak_ramp" -v b="$(rss_peak_mb "$OPERATOR_PID")" 'BEGIN {print (a > b ? a : b)}')"
record "operator total CPU time with $PLATFORMS platforms (s)" "$(cpu_seconds "$OPERATOR_PID")"
curl -fs "$OPERATOR_METRICS" | grep -E '^(controller_runtime_reconcile_total|oyl_operator_children_applied_total)' >"$OUT/operator-metrics.txt" || true
echo "steady-state requests by verb and resource (all $PLATFORMS platforms, ${STEADY}s):" >&2
echo "$summary" | jq -r '.by_verb_resource | to_entries[] | "  \(.value)\t\(.key)"' >&2
stop_operator

# A restart: a new operator process on the same platforms (leader election, the caches filled
# again, every platform reconciled) writes nothing in its first RESTART seconds.
t_r=$(now)
run_operator "$NS"
sleep "$RESTART"
summary=$("$BENCH_BIN/kproxy" summary --log "$PROXY_LOG" --from "$t_r" --to "$(now)")
echo "$summary" | jq . >"$OUT/restart.json"
record "restart: requests in ${RESTART} s (all platforms)" "$(echo "$summary" | jq .total)"
record "restart: writes in ${RESTART} s (all platforms)" "$(echo "$summary" | jq .writes)"
record "restart: operator peak RSS (MiB)" "$(rss_peak_mb "$OPERATOR_PID")"
echo "$summary" | jq -r '.by_verb_resource | to_entries[] | "  \(.value)\t\(.key)"' >&2
stop_operator

"$BENCH_DIR/report.sh" operator "$OUT"
