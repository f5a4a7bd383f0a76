#!/usr/bin/env bash
# Stops the local control plane started by up.sh and removes its state. Safe to run twice.
# Argo CD and its Redis and git daemon (argocd-up.sh) are stopped first.
# With a real node (up.sh --real-node) it first deletes every pod, stops the node and takes away
# everything the node added to the machine (real-node/node.sh, node_stop).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export PATH="$TOOLS_PATH:$PATH"
D="$KCP_DIR"
API_PORT="${KCP_API_PORT:-16443}"
# Argo CD (argocd-up.sh) first, so that it does not sync anything back while the cluster goes:
# each was started as a process group of its own (git daemon's and the repo server's children).
for name in argocd-application-controller argocd-repo-server git-daemon redis; do
  f="$D/argocd/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  kill -- "-$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 -- "-$pid" 2>/dev/null
  rm -f "$f"
done
if [ -d "$D/node" ]; then
  # shellcheck source=real-node/node.sh
  . "$CLUSTER_DIR/real-node/node.sh"
  t0=$(date +%s)
  node_stop
  echo "real node stopped and removed in $(( $(date +%s) - t0 ))s" >&2
fi
for name in oyl-operator kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f="$D/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$f"
done
t1=$(date +%s)
rm -rf "$D"
echo "control plane stopped (state removed in $(( $(date +%s) - t1 ))s)" >&2
