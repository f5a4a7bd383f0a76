#!/usr/bin/env bash
# Builds (or reuses) images and imports them into the running real node's containerd:
#   tests/cluster/real-node/import-images.sh [NAME...]    (default: oyl-operator oyl-server)
# NAME as in tests/images/build.sh; prints NAME=REFERENCE lines. Uses the cluster in $KCP_DIR,
# or the one whose kubeconfig $OYL_E2E_REAL_NODE_KUBECONFIG names.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
if [ -n "${OYL_E2E_REAL_NODE_KUBECONFIG:-}" ]; then KCP_DIR="$(dirname "$OYL_E2E_REAL_NODE_KUBECONFIG")"; fi
sock="$KCP_DIR/containerd/containerd.sock"
[ -S "$sock" ] || { echo "no real node's containerd at $sock (tests/cluster/up.sh --real-node)" >&2; exit 1; }
[ $# -gt 0 ] || set -- oyl-operator oyl-server
exec "$CLUSTER_DIR/../images/build.sh" --import "$sock" "$@"
