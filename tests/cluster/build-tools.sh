#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy, once per version.
# A tool whose cached binary already reports the pinned version is skipped, so a warm run is instant.
#   build-tools.sh              the control plane (with kubelet and kube-proxy), etcd, kwok, helm, actionlint
#   build-tools.sh --real-node  also what the real node needs: CoreDNS, metrics-server, and Debian's containerd,
#                               runc, CNI plugins, iptables, umoci and mmdebstrap (apt, as root)
#   build-tools.sh --argocd     also Argo CD's application controller and repo server (argocd-up.sh)
set -euo pipefail
real_node=false argocd=false
for arg in "$@"; do
  case "$arg" in
    --real-node) real_node=true ;;
    --argocd) argocd=true ;;
    *) echo "usage: build-tools.sh [--real-node] [--argocd]" >&2; exit 2 ;;
  esac
done
. "$(dirname "$0")/lib.sh"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -modcacherw"
# Go's caches live in OYL_CACHE too: an empty OYL_CACHE is a real cold start, and a shared
# GOCACHE lets the tools reuse each other's compiled packages where their versions agree.
export GOCACHE="$OYL_CACHE/go/build" GOMODCACHE="$OYL_CACHE/go/mod"
tools="$CLUSTER_DIR/tools"

# grep reads all the output (not -q): with pipefail, an early exit would fail the pipeline by
# SIGPIPE on a longer output (kubectl version) and rebuild a cached tool for nothing.
have() { [ -x "$1" ] && "$1" "${@:2}" 2>/dev/null | grep -- "$VERSION_WANTED" >/dev/null; }
stamp() { printf '%s: %ss\n' "$1" "$(( $(date +%s) - $2 ))"; }

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
VERSION_WANTED="$K8S_VERSION"
k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
k8s_all() { local c; for c in "${k8s_cmds[@]}"; do [ -x "$K8S_BIN/$c" ] || return 1; done; }
if have "$K8S_BIN/kube-apiserver" --version && have "$K8S_BIN/kubectl" version --client \
   && have "$K8S_BIN/kubelet" --version && k8s_all; then
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
  # One `go build` for all of them (one module, one set of ldflags, shared compiled packages),
  # into a staging directory first: renaming over a binary that a running cluster executes is
  # safe, writing into it is not ("text file busy").
  mkdir -p "$K8S_BIN" "$K8S_BIN.staging"
  (cd "$tools/k8s" && go build -trimpath -ldflags "$ld" -o "$K8S_BIN.staging/" \
    "${k8s_cmds[@]/#/k8s.io/kubernetes/cmd/}")
  for c in "${k8s_cmds[@]}"; do mv -f "$K8S_BIN.staging/$c" "$K8S_BIN/$c"; done
  rmdir "$K8S_BIN.staging"
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

# actionlint: the workflows' linter. Its version comes from a variable upstream's release sets
# with ldflags (otherwise it reports the wrapper module's "(devel)").
VERSION_WANTED="${ACTIONLINT_VERSION}"
if have "$ACTIONLINT_BIN/actionlint" -version; then echo "actionlint $ACTIONLINT_VERSION: cached"; else
  t=$(date +%s); mkdir -p "$ACTIONLINT_BIN"
  (cd "$tools/actionlint" && go build -trimpath -ldflags "-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" \
    -o "$ACTIONLINT_BIN/actionlint" github.com/rhysd/actionlint/cmd/actionlint)
  have "$ACTIONLINT_BIN/actionlint" -version || { echo "actionlint does not report $ACTIONLINT_VERSION" >&2; exit 1; }
  stamp actionlint "$t"
fi

# Argo CD: one binary that dispatches on its own name (argocd, argocd-application-controller,
# argocd-repo-server), stamped as upstream's Makefile does; without ldflags it reports
# v99.99.99+unknown. Its go.mod declares go 1.27: the pinned toolchain comes from the module
# proxy (GOTOOLCHAIN), the one exception to GOTOOLCHAIN=local here. Next to it: its CRDs, its
# install.yaml (the default ConfigMaps and Secrets) and hack/git-verify-wrapper.sh, which the
# repo server runs from PATH, all from the same module version.
build_argocd() {
  VERSION_WANTED="argocd: $ARGOCD_VERSION"
  if have "$ARGOCD_BIN/argocd" version --client --short && [ -f "$ARGOCD_BIN/crds/application-crd.yaml" ]; then
    echo "argocd $ARGOCD_VERSION: cached"; return 0
  fi
  local t dir sum kubectl_v ld p=github.com/argoproj/argo-cd/v3/common
  t=$(date +%s); mkdir -p "$ARGOCD_BIN"
  sum="$(awk -v v="$ARGOCD_VERSION" '$1=="github.com/argoproj/argo-cd/v3" && $2==v {print $3}' "$tools/argocd/go.sum")"
  [ -n "$sum" ] || { echo "github.com/argoproj/argo-cd/v3 $ARGOCD_VERSION missing from $tools/argocd/go.sum" >&2; exit 1; }
  kubectl_v="$(awk '$1=="k8s.io/kubectl" && $2=="=>" {print $4}' "$tools/argocd/go.mod")"
  ld="-s -w -X $p.version=${ARGOCD_VERSION#v} -X $p.gitTag=$ARGOCD_VERSION -X $p.gitCommit=$sum"
  ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z -X $p.kubectlVersion=$kubectl_v"
  (cd "$tools/argocd" && GOTOOLCHAIN="$ARGOCD_GOTOOLCHAIN" go build -trimpath -ldflags "$ld" \
    -o "$ARGOCD_BIN/argocd.new" github.com/argoproj/argo-cd/v3/cmd)
  dir="$(cd "$tools/argocd" && GOTOOLCHAIN="$ARGOCD_GOTOOLCHAIN" go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)"
  mkdir -p "$ARGOCD_BIN/crds"
  install -m 0644 "$dir"/manifests/crds/*-crd.yaml "$ARGOCD_BIN/crds/"
  install -m 0644 "$dir/manifests/install.yaml" "$ARGOCD_BIN/install.yaml"
  install -m 0755 "$dir/hack/git-verify-wrapper.sh" "$ARGOCD_BIN/git-verify-wrapper.sh"
  ln -sf argocd "$ARGOCD_BIN/argocd-application-controller"
  ln -sf argocd "$ARGOCD_BIN/argocd-repo-server"
  mv -f "$ARGOCD_BIN/argocd.new" "$ARGOCD_BIN/argocd"
  have "$ARGOCD_BIN/argocd" version --client --short || { echo "argocd does not report $ARGOCD_VERSION" >&2; exit 1; }
  stamp argocd "$t"
}
$argocd && build_argocd

$real_node || exit 0

VERSION_WANTED="CoreDNS-${COREDNS_VERSION#v}"
if have "$COREDNS_BIN/coredns" -version; then echo "coredns $COREDNS_VERSION: cached"; else
  t=$(date +%s); mkdir -p "$COREDNS_BIN"
  (cd "$tools/coredns" && go build -trimpath -ldflags "-s -w" -o "$COREDNS_BIN/coredns" github.com/coredns/coredns)
  have "$COREDNS_BIN/coredns" -version || { echo "coredns does not report $COREDNS_VERSION" >&2; exit 1; }
  stamp coredns "$t"
fi

# metrics-server: version stamped as upstream's Makefile does (client-go's version package, which
# `--version` prints); the module proxy has no git commit, so the commit is go.sum's content hash.
VERSION_WANTED="$METRICS_SERVER_VERSION"
if have "$METRICS_SERVER_BIN/metrics-server" --version; then echo "metrics-server $METRICS_SERVER_VERSION: cached"; else
  t=$(date +%s); mkdir -p "$METRICS_SERVER_BIN"
  sum="$(awk -v v="$METRICS_SERVER_VERSION" '$1=="sigs.k8s.io/metrics-server" && $2==v {print $3}' "$tools/metrics-server/go.sum")"
  [ -n "$sum" ] || { echo "sigs.k8s.io/metrics-server $METRICS_SERVER_VERSION missing from $tools/metrics-server/go.sum" >&2; exit 1; }
  ld="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
  ld+=" -X k8s.io/client-go/pkg/version.gitCommit=$sum -X k8s.io/client-go/pkg/version.buildDate=1970-01-01T00:00:00Z"
  (cd "$tools/metrics-server" && go build -trimpath -ldflags "$ld" -o "$METRICS_SERVER_BIN/metrics-server.new" sigs.k8s.io/metrics-server/cmd/metrics-server)
  mv -f "$METRICS_SERVER_BIN/metrics-server.new" "$METRICS_SERVER_BIN/metrics-server"
  have "$METRICS_SERVER_BIN/metrics-server" --version || { echo "metrics-server does not report $METRICS_SERVER_VERSION" >&2; exit 1; }
  stamp metrics-server "$t"
fi

# Debian's packages: containerd 1.6 (kubelet 1.36 still accepts 1.x), runc, the CNI plugins
# (bridge, host-local, loopback, portmap), iptables and conntrack for kube-proxy, nftables for
# the pod-traffic guard and teardown, umoci and
# mmdebstrap for the images. apt does not start containerd here (no systemd): up.sh runs its own.
need=()
for pkg in containerd runc containernetworking-plugins iptables conntrack nftables umoci mmdebstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "the real node needs root (apt: ${need[*]})" >&2; exit 1; }
  echo "apt: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
else
  echo "apt: containerd $(dpkg-query -W -f '${Version}' containerd), runc, CNI plugins present"
fi
