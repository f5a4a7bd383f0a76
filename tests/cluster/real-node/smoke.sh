#!/usr/bin/env bash
# A quick self-test of a real node (KUBECONFIG set, e.g. by check-clean.sh): in a namespace
# enforcing Pod Security `restricted`, a non-root Redis pod (the stand-in image) writes its
# volume (a claim of the default StorageClass), becomes Ready from its real probe, answers
# through its Service from this machine and, by DNS name, from another pod; the API server
# answers pods through the `kubernetes` Service; nothing outside the machine is reachable from
# a pod. Deletes its namespace at the end.
set -euo pipefail
ns="smoke-$$"
fail() { echo "smoke: FAILED: $*" >&2; kubectl get pods,pvc -n "$ns" -o wide >&2 || true; exit 1; }
t0=$(date +%s)
kubectl create namespace "$ns" >/dev/null
kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
pod() { # pod NAME [COMMAND ARGS]: a restricted pod of the Redis stand-in
cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {app: $1}}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: main
    image: localhost/oyl-test/redis:7.0
    imagePullPolicy: Never
    command: [redis-server]
    args: [--dir, /data, --appendonly, "yes", --protected-mode, "no"]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    readinessProbe: {exec: {command: [sh, -c, "redis-cli -h 127.0.0.1 ping | grep -q PONG"]}, periodSeconds: 1}
    resources: {limits: {cpu: 200m, memory: 128Mi}}
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [$2]
YAML
}
{
  printf 'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n---\n'
  pod redis '{name: data, persistentVolumeClaim: {claimName: data}}'
  printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: redis}\nspec: {selector: {app: redis}, ports: [{port: 6379}]}\n---\n'
  pod client '{name: data, emptyDir: {}}'
} | kubectl apply -n "$ns" -f - >/dev/null
kubectl wait -n "$ns" pod/redis pod/client --for=condition=Ready --timeout=120s >/dev/null || fail "pods not Ready"
echo "smoke: pods Ready in $(( $(date +%s) - t0 ))s"
kubectl exec -n "$ns" redis -- sh -c 'test "$(id -u)" = 999 && test -d /data/appendonlydir' || fail "redis did not write its volume"
ip="$(kubectl get svc -n "$ns" redis -o jsonpath='{.spec.clusterIP}')"
exec 3<>"/dev/tcp/$ip/6379" && printf 'PING\r\n' >&3 && read -r -t 5 reply <&3 && exec 3<&-
[ "${reply%$'\r'}" = "+PONG" ] || fail "Service $ip:6379 from this machine: '${reply:-}'"
kubectl exec -n "$ns" client -- redis-cli -h "redis.$ns.svc.cluster.local" ping | grep -q PONG || fail "Service by DNS name from a pod"
kubectl exec -n "$ns" client -- bash -c 'timeout 5 bash -c "echo > /dev/tcp/kubernetes.default.svc.cluster.local/443"' || fail "API server from a pod"
gw="$(ip route show default | awk '{print $3; exit}')"
if kubectl exec -n "$ns" client -- bash -c "timeout 3 bash -c 'echo > /dev/tcp/$gw/53' 2>/dev/null || timeout 3 bash -c 'echo > /dev/tcp/$gw/80' 2>/dev/null" 2>/dev/null; then
  fail "a pod reached $gw outside the machine"
fi
kubectl exec -n "$ns" client -- bash -c 'getent hosts deb.debian.org' >/dev/null 2>&1 && fail "a pod resolved a name outside cluster.local"
echo "smoke: passed in $(( $(date +%s) - t0 ))s"
