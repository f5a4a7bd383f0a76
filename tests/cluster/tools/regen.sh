#!/usr/bin/env bash
# Regenerates the pinned tools modules (go.mod + go.sum) from the versions in versions.env.
# Run only when bumping a version; CI and build.sh use the committed files as they are.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

# Kubernetes: k8s.io/kubernetes pins its staging modules at v0.0.0 with ./staging replaces, so
# we replace each staging module with its published v0.Y.Z tag (kubernetes/kubernetes#79384).
stg="v0.${K8S_VERSION#v1.}"
gomod="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
gover="$(awk '$1=="go"{print $2; exit}' "$gomod")"
cd "$here/k8s"
{
  printf 'module local/oyl-k8s-tools\n\ngo %s\n\ngodebug default=go%s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' \
    "$gover" "$(echo "$gover" | cut -d. -f1,2)" "$K8S_VERSION"
  sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\t\1 => \1 '"$stg"'#p' "$gomod"
  printf ')\n\ntool (\n'
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do printf '\tk8s.io/kubernetes/cmd/%s\n' "$c"; done
  printf ')\n'
} > go.mod
rm -f go.sum; go mod tidy

# etcd: server/go.mod has ../ replaces, so `go install` refuses it; a dependency's replaces are ignored.
cd "$here/etcd"
printf 'module local/oyl-etcd-tools\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n\ntool go.etcd.io/etcd/server/v3\n' "$ETCD_VERSION" > go.mod
rm -f go.sum; go mod tidy

cd "$here/kwok"
printf 'module local/oyl-kwok-tools\n\ngo 1.26.0\n\nrequire sigs.k8s.io/kwok %s\n\ntool sigs.k8s.io/kwok/cmd/kwok\n' "$KWOK_VERSION" > go.mod
rm -f go.sum; go mod tidy

cd "$here/helm"
printf 'module local/oyl-helm-tools\n\ngo 1.26.0\n\nrequire helm.sh/helm/v3 %s\n\ntool helm.sh/helm/v3/cmd/helm\n' "$HELM_VERSION" > go.mod
rm -f go.sum; go mod tidy

cd "$here/actionlint"
printf 'module local/oyl-actionlint-tools\n\ngo 1.26.0\n\nrequire github.com/rhysd/actionlint %s\n\ntool github.com/rhysd/actionlint/cmd/actionlint\n' "$ACTIONLINT_VERSION" > go.mod
rm -f go.sum; go mod tidy

# CoreDNS (the real node's cluster DNS): its main package is the module root.
cd "$here/coredns"
printf 'module local/oyl-coredns-tools\n\ngo 1.26.0\n\nrequire github.com/coredns/coredns %s\n\ntool github.com/coredns/coredns\n' "$COREDNS_VERSION" > go.mod
rm -f go.sum; go mod tidy

# metrics-server (the real node's resource metrics API).
mkdir -p "$here/metrics-server" && cd "$here/metrics-server"
printf 'module local/oyl-metrics-server-tools\n\ngo 1.26.4\n\nrequire sigs.k8s.io/metrics-server %s\n\ntool sigs.k8s.io/metrics-server/cmd/metrics-server\n' "$METRICS_SERVER_VERSION" > go.mod
rm -f go.sum; go mod tidy

# Argo CD: its go.mod pins the k8s.io/* staging modules it uses (and a few others) with a replace
# block, which a module depending on it must copy (without it: "k8s.io/kubelet@v0.0.0 ... not
# available"); its `./gitops-engine` path replace is left out (that module is on the proxy at the
# same version). It declares a newer Go than ours: the pinned toolchain comes from the proxy.
mkdir -p "$here/argocd" && cd "$here/argocd"
gomod="$(GOTOOLCHAIN="$ARGOCD_GOTOOLCHAIN" go mod download -json "github.com/argoproj/argo-cd/v3@${ARGOCD_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
gover="$(awk '$1=="go"{print $2; exit}' "$gomod")"
{
  printf 'module local/oyl-argocd-tools\n\ngo %s\n\nrequire github.com/argoproj/argo-cd/v3 %s\n\n' "$gover" "$ARGOCD_VERSION"
  printf '// Copied from github.com/argoproj/argo-cd/v3 %s go.mod (tests/cluster/tools/regen.sh).\n' "$ARGOCD_VERSION"
  awk '/^replace \($/,/^\)$/' "$gomod"
  printf '\ntool github.com/argoproj/argo-cd/v3/cmd\n'
} > go.mod
rm -f go.sum; GOTOOLCHAIN="$ARGOCD_GOTOOLCHAIN" go mod tidy
