#!/usr/bin/env bash
# Starts Argo CD against the running local cluster and serves a directory as a Git repository:
#   tests/cluster/argocd-up.sh [DIR]
# DIR is a git checkout whose committed HEAD is served (default: this checkout), or any other
# directory, served as it is. The served repository's branch `main` is that tree plus one commit
# that replaces only the `repoURL` of the Applications in config/argocd/ with the served URL, so
# that they work as shipped:
#   kubectl -n argocd patch configmap argocd-cm --patch-file config/argocd/argocd-cm-patch.yaml
#   kubectl -n argocd apply -f <served main>/config/argocd/root.yaml
# The URL (git://127.0.0.1:PORT/oyl-platform.git) is the last line of output.
#
# What runs, as host processes (logs and state in $KCP_DIR/argocd; down.sh stops them):
#   - Argo CD's application controller and repo server (build-tools.sh --argocd), with
#     ARGOCD_FAKE_IN_CLUSTER=true: the in-cluster destination (https://kubernetes.default.svc,
#     what the shipped Applications name) is the cluster of KUBECONFIG, as in Argo CD's own
#     Procfile. No API server, UI, Dex or ApplicationSet controller: Applications are kubectl'd.
#   - Redis (Debian's redis-server) on 127.0.0.1, Argo CD's cache.
#   - git daemon on 127.0.0.1, serving $KCP_DIR/argocd/git read-only.
# In the cluster: namespace argocd, Argo CD's CRDs, its default ConfigMaps and Secrets (from the
# same version's install.yaml) and the `default` AppProject (argocd-server would create it).
#
# Uses KUBECONFIG (default: the admin kubeconfig of the cluster in $KCP_DIR). Ports:
# KCP_ARGOCD_REDIS_PORT, KCP_ARGOCD_REPO_PORT, KCP_ARGOCD_REPO_METRICS_PORT, KCP_ARGOCD_CONTROLLER_PORT
# (metrics and /healthz; Argo CD has no flag for its address: it listens on every interface),
# KCP_ARGOCD_GIT_PORT. Idempotent: when Argo CD already runs, DIR is served again (main moves).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -le 1 ] || { echo "usage: argocd-up.sh [DIR]" >&2; exit 2; }
src="$(cd "${1:-$REPO_ROOT}" && pwd -P)"
"$CLUSTER_DIR/build-tools.sh" --argocd >&2
export PATH="$ARGOCD_BIN:$TOOLS_PATH:$PATH"
export KUBECONFIG="${KUBECONFIG:-$KCP_DIR/admin.kubeconfig}"
kubectl get --raw=/readyz >/dev/null 2>&1 || { echo "no cluster answers at KUBECONFIG=$KUBECONFIG (tests/cluster/up.sh)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server missing (tests/setup.sh installs it)" >&2; exit 1; }

A="$KCP_DIR/argocd"
REDIS_PORT="${KCP_ARGOCD_REDIS_PORT:-16380}"
# Argo CD's own defaults + 10000: repo server 8081 (its metrics 8084), controller metrics 8082.
# Every port distinct: the repo server's metrics once sat on the controller's (18082), so the
# controller died at start ("address already in use") while its health check answered from the
# repo server.
REPO_PORT="${KCP_ARGOCD_REPO_PORT:-18081}"
REPO_METRICS_PORT="${KCP_ARGOCD_REPO_METRICS_PORT:-18084}"
CONTROLLER_PORT="${KCP_ARGOCD_CONTROLLER_PORT:-18082}"
GIT_PORT="${KCP_ARGOCD_GIT_PORT:-19418}"
URL="git://127.0.0.1:$GIT_PORT/oyl-platform.git"
mkdir -p "$A"/{logs,git,tmp,home,redis,tls,ssh,gpg/keys,gpg/source}
chmod 700 "$A/gpg/keys"

alive() { [ -f "$A/$1.pid" ] && kill -0 "$(cat "$A/$1.pid")" 2>/dev/null; }
start() { # start NAME COMMAND...: a detached process group whose pid is kept for down.sh
  local name=$1; shift
  setsid "$@" >"$A/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$A/$name.pid"
}
wait_for() { # wait_for SECONDS NAME COMMAND...
  local deadline=$(( $(date +%s) + $1 )) name=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name" || [ "$(date +%s)" -ge "$deadline" ]; then
      echo "$name did not come up (log: $A/logs/$name.log):" >&2; tail -n 30 "$A/logs/$name.log" >&2; exit 1
    fi
    sleep 0.3
  done
}

# The served repository: DIR's committed HEAD (or DIR's files), then one commit replacing the
# Applications' repoURL, written with plumbing straight into the bare repository (no clone).
serve() {
  local bare="$A/git/oyl-platform.git" base tree f blob mode commit checkout=false
  [ -d "$bare" ] || git init -q --bare "$bare"
  if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$src" ]; then
    checkout=true
    git -C "$src" push -q -f "$bare" "HEAD:refs/heads/source"
  fi
  export GIT_DIR="$bare" GIT_INDEX_FILE="$A/tmp/serve.index"
  export GIT_AUTHOR_NAME=argocd-up.sh GIT_AUTHOR_EMAIL=argocd-up@oyl.invalid
  export GIT_COMMITTER_NAME=argocd-up.sh GIT_COMMITTER_EMAIL=argocd-up@oyl.invalid
  rm -f "$GIT_INDEX_FILE"
  if $checkout; then
    base="$(git rev-parse refs/heads/source)"
    git read-tree "$base"
    echo "serving $src at its committed HEAD $base" >&2
  else
    (cd "$src" && git --work-tree="$src" add -A .)
    tree="$(git write-tree)"
    base="$(git commit-tree "$tree" -m "argocd-up.sh: $src")"
    echo "serving the files of $src" >&2
  fi
  while IFS= read -r f; do
    mode="$(git ls-files -s -- "$f" | awk '{print $1}')"
    blob="$(git cat-file blob ":$f" | sed -E "s#^([[:space:]]*repoURL:).*#\1 $URL#" | git hash-object -w --stdin)"
    git update-index --cacheinfo "$mode,$blob,$f"
  done < <(git ls-files -- 'config/argocd/*.yaml' 'config/argocd/**/*.yaml' | sort -u)
  tree="$(git write-tree)"
  commit="$(git commit-tree "$tree" -p "$base" -m "repoURL: $URL (tests/cluster/argocd-up.sh)")"
  git update-ref refs/heads/main "$commit"
  git symbolic-ref HEAD refs/heads/main
  rm -f "$GIT_INDEX_FILE"
  unset GIT_DIR GIT_INDEX_FILE
  echo "main = $commit: the repoURL of $(git --git-dir="$bare" diff --name-only "$base" "$commit" | wc -l) Applications replaced" >&2
}

running=true
for name in redis git-daemon argocd-repo-server argocd-application-controller; do alive "$name" || running=false; done
if $running; then
  serve
  echo "Argo CD already running (logs: $A/logs)" >&2
  echo "$URL"
  exit 0
fi
t0=$(date +%s)

start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$A/redis"
wait_for 30 redis redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping
serve
start git-daemon git daemon --reuseaddr --listen=127.0.0.1 --port="$GIT_PORT" --base-path="$A/git" \
  --export-all --informative-errors "$A/git"
wait_for 30 git-daemon git ls-remote "$URL" refs/heads/main

# The CRDs (server-side: the Application CRD is larger than client-side apply's annotation
# allows), the default ConfigMaps and Secrets, and the default AppProject.
kubectl create namespace argocd --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply --server-side --force-conflicts -f "$ARGOCD_BIN/crds/" >/dev/null
for crd in applications.argoproj.io appprojects.argoproj.io applicationsets.argoproj.io; do
  wait_condition 60 Established "crd/$crd" >/dev/null
done
awk 'BEGIN{RS="\n---\n"; ORS="\n---\n"} /(^|\n)kind: (ConfigMap|Secret)\n/' "$ARGOCD_BIN/install.yaml" \
  | kubectl -n argocd apply -f - >/dev/null
kubectl -n argocd apply -f - >/dev/null <<'PROJECT'
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: default
  namespace: argocd
spec:
  sourceRepos: ["*"]
  destinations: [{namespace: "*", server: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
PROJECT

# Both in an environment of their own: HOME (git and helm configuration and caches), TMPDIR (the
# repo server's clones), Argo CD's TLS, SSH and GnuPG directories and the repo server's askpass
# socket (else /tmp/reposerver-ask-pass.sock), all under $A. The repo server
# runs git, helm (the pinned one) and git-verify-wrapper.sh from PATH.
argocd_env=(env ARGOCD_FAKE_IN_CLUSTER=true KUBECONFIG="$KUBECONFIG" HOME="$A/home" TMPDIR="$A/tmp"
  PATH="$ARGOCD_BIN:$HELM_BIN:/usr/local/bin:/usr/bin:/bin"
  ARGOCD_TLS_DATA_PATH="$A/tls" ARGOCD_SSH_DATA_PATH="$A/ssh" ARGOCD_GPG_ENABLED=false
  ARGOCD_GNUPGHOME="$A/gpg/keys" ARGOCD_GPG_DATA_PATH="$A/gpg/source"
  ARGOCD_ASK_PASS_SOCK="$A/reposerver-ask-pass.sock")
start argocd-repo-server "${argocd_env[@]}" argocd-repo-server --logformat text \
  --address 127.0.0.1 --port "$REPO_PORT" --metrics-address 127.0.0.1 --metrics-port "$REPO_METRICS_PORT" \
  --redis "127.0.0.1:$REDIS_PORT" --disable-tls --client-ca-path ""
wait_for 60 argocd-repo-server curl -fs "http://127.0.0.1:$REPO_METRICS_PORT/healthz"
# --persist-resource-health (argocd-cmd-params-cm's controller.resource.health.persist): Argo CD 3
# keeps each resource's health (status and message) in Redis for argocd-server's resource tree,
# which is not running here; persisted, it is in the Application's status.resources[] (as in
# Argo CD 2), where kubectl and the tests read it. The health itself is computed the same way.
start argocd-application-controller "${argocd_env[@]}" argocd-application-controller --logformat text \
  --kubeconfig "$KUBECONFIG" --namespace argocd --metrics-port "$CONTROLLER_PORT" \
  --repo-server "127.0.0.1:$REPO_PORT" --repo-server-plaintext --redis "127.0.0.1:$REDIS_PORT" \
  --persist-resource-health
wait_for 60 argocd-application-controller sh -c \
  "kill -0 $(cat "$A/argocd-application-controller.pid") && curl -fs http://127.0.0.1:$CONTROLLER_PORT/healthz"
echo "Argo CD $ARGOCD_VERSION ready in $(( $(date +%s) - t0 ))s: controller, repo server, redis :$REDIS_PORT (logs: $A/logs)" >&2
echo "$URL"
