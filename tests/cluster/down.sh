#!/usr/bin/env bash
# Stops the local control plane started by up.sh and removes its state. Safe to run twice.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
D="$KCP_DIR"
for name in oyl-operator kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f="$D/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$f"
done
rm -rf "$D"
echo "control plane stopped" >&2
