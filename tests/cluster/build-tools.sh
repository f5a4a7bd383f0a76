#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy, once per version.
# A tool whose cached binary already reports the pinned version is skipped, so a warm run is instant.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -modcacherw"
# Go's caches live in OYL_CACHE too: an empty OYL_CACHE is a real cold start, and a shared
# GOCACHE lets the tools reuse each other's compiled packages where their versions agree.
export GOCACHE="$OYL_CACHE/go/build" GOMODCACHE="$OYL_CACHE/go/mod"
tools="$CLUSTER_DIR/tools"

have() { [ -x "$1" ] && "$1" "${@:2}" 2>/dev/null | grep -q -- "$VERSION_WANTED"; }
stamp() { printf '%s: %ss\n' "$1" "$(( $(date +%s) - $2 ))"; }

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
VERSION_WANTED="$K8S_VERSION"
if have "$K8S_BIN/kube-apiserver" --version && have "$K8S_BIN/kubectl" version --client \
   && [ -x "$K8S_BIN/kube-controller-manager" ] && [ -x "$K8S_BIN/kube-scheduler" ]; then
  echo "kubernetes $K8S_VERSION: cached in $K8S_BIN"
else
  t=$(date +%s); echo "kubernetes $K8S_VERSION: building (cold: ~20-30 min on 2 cores)"
  # Stamp the real version, as upstream's hack/lib/version.sh does; a module build otherwise
  # reports v0.0.0-master, which breaks helm's kubeVersion checks and kubectl's skew warnings.
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$K8S_BIN"
  (cd "$tools/k8s" && go build -trimpath -ldflags "$ld" -o "$K8S_BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  have "$K8S_BIN/kube-apiserver" --version || { echo "kube-apiserver does not report $K8S_VERSION" >&2; exit 1; }
  stamp kubernetes "$t"
fi

VERSION_WANTED="${ETCD_VERSION#v}"
if have "$ETCD_BIN/etcd" --version; then echo "etcd $ETCD_VERSION: cached"; else
  t=$(date +%s); mkdir -p "$ETCD_BIN"
  (cd "$tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$ETCD_BIN/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd "$t"
fi

VERSION_WANTED="$KWOK_VERSION"
if [ -x "$KWOK_BIN/kwok" ]; then echo "kwok $KWOK_VERSION: cached"; else
  t=$(date +%s); mkdir -p "$KWOK_BIN"
  (cd "$tools/kwok" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" -o "$KWOK_BIN/kwok" sigs.k8s.io/kwok/cmd/kwok)
  stamp kwok "$t"
fi

VERSION_WANTED="$HELM_VERSION"
# Stamped as upstream's Makefile does: the version, the source it was built from and the default
# Kubernetes version of `helm template`/`helm lint` (which is otherwise v1.20 and refuses the
# chart's kubeVersion). The default is the pinned control plane's minor, not client-go's + 1 as
# upstream derives it. The module proxy does not serve the release's git commit, so GitCommit is
# the module's content hash from go.sum: it names exactly the source that was compiled.
helm_kube_ok() { [ "$("$HELM_BIN/helm" template "$CLUSTER_DIR/tools/kube-version-chart" 2>/dev/null \
  | sed -n 's/^kubeVersion: //p')" = "v1.$minor.0" ]; }
if have "$HELM_BIN/helm" version --short && helm_kube_ok; then echo "helm $HELM_VERSION: cached"; else
  t=$(date +%s); mkdir -p "$HELM_BIN"
  sum="$(awk -v v="$HELM_VERSION" '$1=="helm.sh/helm/v3" && $2==v {print $3}' "$tools/helm/go.sum")"
  [ -n "$sum" ] || { echo "helm.sh/helm/v3 $HELM_VERSION missing from $tools/helm/go.sum" >&2; exit 1; }
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/internal/version.gitCommit=$sum -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
  (cd "$tools/helm" && go build -trimpath -ldflags "$ld" -o "$HELM_BIN/helm" helm.sh/helm/v3/cmd/helm)
  have "$HELM_BIN/helm" version --short || { echo "helm does not report $HELM_VERSION" >&2; exit 1; }
  helm_kube_ok || { echo "helm's default Kubernetes version is not v1.$minor.0" >&2; exit 1; }
  stamp helm "$t"
fi
