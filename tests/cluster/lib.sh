# Shared by the cluster scripts: versions, cache locations and the PATH holding the built tools.
# shellcheck shell=bash
CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/versions.env
. "$CLUSTER_DIR/tools/versions.env"
OYL_CACHE="${OYL_CACHE:-$HOME/.cache/oyl}"
K8S_BIN="$OYL_CACHE/bin/k8s-$K8S_VERSION"
ETCD_BIN="$OYL_CACHE/bin/etcd-$ETCD_VERSION"
KWOK_BIN="$OYL_CACHE/bin/kwok-$KWOK_VERSION"
HELM_BIN="$OYL_CACHE/bin/helm-$HELM_VERSION"
TOOLS_PATH="$K8S_BIN:$ETCD_BIN:$KWOK_BIN:$HELM_BIN"
# Where a running control plane keeps its state, PKI, logs and pid files.
KCP_DIR="${KCP_DIR:-$OYL_CACHE/kcp}"
