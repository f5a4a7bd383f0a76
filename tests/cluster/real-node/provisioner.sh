#!/usr/bin/env bash
# The real node's storage provisioner (StorageClass `standard`, provisioner oyl.dev/local-dir):
# for each pending claim of that class it makes a directory under VOLUMES_DIR and a `local`
# PersistentVolume bound to the claim on NODE. Unlike hostPath volumes (kube-controller-manager's
# test provisioner makes them 0750 root:root), the kubelet applies the pod's fsGroup to local
# volumes, so non-root pods can write them. Released volumes are deleted with their directory.
#   provisioner.sh KUBECONFIG VOLUMES_DIR NODE
set -uo pipefail
export KUBECONFIG="$1"; dir="$2"; node="$3"
class=standard
mkdir -p "$dir"
while :; do
  kubectl get pvc -A -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.namespace}{" "}{.metadata.name}{" "}{.metadata.uid}{" "}{.spec.storageClassName}{" "}{.spec.resources.requests.storage}{"\n"}{end}' 2>/dev/null |
  while read -r ns name uid sc size; do
    [ "$sc" = "$class" ] || continue
    pv="pvc-$uid"
    kubectl get pv "$pv" >/dev/null 2>&1 && continue
    mkdir -p "$dir/$pv"
    kubectl create -f - >/dev/null <<PV && echo "provisioned $pv for $ns/$name ($size)"
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $pv
  annotations: {pv.kubernetes.io/provisioned-by: oyl.dev/local-dir}
spec:
  capacity: {storage: "$size"}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: $class
  claimRef: {namespace: $ns, name: $name, uid: $uid}
  local: {path: "$dir/$pv"}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$node]}]
PV
  done
  kubectl get pv -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{" "}{.spec.storageClassName}{"\n"}{end}' 2>/dev/null |
  while read -r pv sc; do
    [ "$sc" = "$class" ] || continue
    kubectl delete pv "$pv" --wait=false >/dev/null 2>&1 && rm -rf "${dir:?}/$pv" && echo "deleted $pv"
  done
  sleep 1
done
