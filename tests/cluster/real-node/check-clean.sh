#!/usr/bin/env bash
# Proves that the real node leaves this machine as it found it: snapshots the machine
# (machine-state.sh), runs up.sh --real-node, optionally a command against the cluster (with
# KUBECONFIG and OYL_E2E_REAL_NODE_KUBECONFIG set), then down.sh, snapshots again and fails on
# any difference, or when up.sh or the command failed (down.sh runs in every case).
#   tests/cluster/real-node/check-clean.sh [COMMAND...]
# Runs with the caller's KCP_* variables (ports and cluster directory).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
w="$(mktemp -d)"; trap 'rm -rf "$w"' EXIT
"$here/machine-state.sh" > "$w/before"
t=$(date +%s)
failed=""
if kubeconfig="$("$here/../up.sh" --real-node | tail -n 1)"; then
  echo "up: $(( $(date +%s) - t ))s"
  if [ $# -gt 0 ]; then
    KUBECONFIG="$kubeconfig" OYL_E2E_REAL_NODE_KUBECONFIG="$kubeconfig" "$@" || failed="command failed: $*"
  fi
else
  failed="up.sh --real-node failed"
fi
t=$(date +%s)
"$here/../down.sh"
echo "down: $(( $(date +%s) - t ))s"
"$here/machine-state.sh" > "$w/after"
if diff -u "$w/before" "$w/after"; then
  echo "machine state after down.sh is the same as before up.sh"
else
  echo "machine state differs after down.sh (- before, + after)" >&2
  exit 1
fi
[ -z "$failed" ] || { echo "$failed" >&2; exit 1; }
