#!/usr/bin/env bash
# Prints what a real node may change on this machine, in a stable form, so that two snapshots
# (before up.sh --real-node, after down.sh) can be compared with diff: network interfaces,
# addresses and routes, netfilter rules (nft and iptables-save, counters dropped), mounts,
# network namespaces, the kernel settings kubelet/CNI/kube-proxy touch, the files outside the
# cluster directory they write, cgroups, and the node's processes (and Argo CD's, argocd-up.sh).
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
. "$CLUSTER_DIR/real-node/node.sh"
section() { printf '\n## %s\n' "$1"; }
section links;    ip -o link show | awk '{print $2, $3}' | sed 's/@[^:]*:/:/' | sort
section addresses; ip -o addr show | awk '{print $2, $3, $4}' | sort
section routes;   ip route show table all | sort
section nft;      nft list ruleset 2>&1
section iptables; { iptables-save; ip6tables-save; } 2>&1 | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
section mounts;   awk '{print $5, $9}' /proc/self/mountinfo | grep -v '/\.rootfs-' | sort  # (not image builds' chroots)
section netns;    ls -A /run/netns /var/run/netns 2>&1
section sysctls;  for s in "${NODE_SYSCTLS[@]}"; do printf '%s=%s\n' "$s" "$(sysctl -n "$s" 2>&1)"; done
section paths
for p in "${NODE_HOST_PATHS[@]}"; do
  if [ -e "$p" ]; then find "$p" -maxdepth 2 2>/dev/null | sort; else echo "$p: absent"; fi
done
section cgroups;  find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d 2>/dev/null | grep -v '/process_api' | sort
section processes; ps -eo comm= | grep -E '^(kubelet|kube-proxy|containerd|containerd-shim.*|coredns|runc|pause|argocd.*|git-daemon)$' | sort | uniq -c
# Argo CD's Redis (argocd-up.sh), by its port: the server tests' Redis may run meanwhile.
ps -eo args= | grep -E "^redis-server 127\\.0\\.0\\.1:${KCP_ARGOCD_REDIS_PORT:-16380}( |\$)" | sed 's/^/argocd /'
exit 0
