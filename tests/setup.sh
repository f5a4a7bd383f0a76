#!/usr/bin/env bash
# Installs what the tests need and this repository cannot build itself, once; a warm run only
# checks. Called by tests/run.sh (and so by CI); safe to run by hand.
#   apt (root or sudo): openssl, curl, git, PostgreSQL, Redis, python3-venv, headless Chromium,
#   shellcheck (actionlint runs it on the workflows' scripts)
#   PyPI, in venvs under $OYL_CACHE: checkov (policy checks), moto + awscli (the S3 backup test),
#   schemathesis (the API document against the server: tests/api/schemathesis.sh)
#   Go module proxy: the control plane's tools, helm and actionlint (tests/cluster/build-tools.sh)
#   and, as root, what the real node needs: CoreDNS, containerd, runc, CNI plugins, nftables,
#   umoci, mmdebstrap (build-tools.sh --real-node), and Argo CD for the GitOps suite (--argocd)
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/cluster/lib.sh

need=()
for pkg in openssl curl git postgresql redis-server python3-venv chromium-headless-shell shellcheck; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "apt: installing ${need[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "apt: every package present"
fi

venv="$OYL_CACHE/checkov-venv"
if [ ! -x "$venv/bin/checkov" ]; then
  echo "pip: checkov"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet checkov==3.3.30
fi
echo "checkov $("$venv/bin/checkov" --version)"
s3venv="$OYL_CACHE/s3-venv"
if [ ! -x "$s3venv/bin/moto_server" ] || [ ! -x "$s3venv/bin/aws" ]; then
  echo "pip: moto, awscli"
  python3 -m venv "$s3venv"
  "$s3venv/bin/pip" install --quiet "moto[server]==5.1.18" "awscli==1.42.60"
fi
. tests/api/versions.env
stvenv="$OYL_CACHE/schemathesis-$SCHEMATHESIS_VERSION-venv"
if [ ! -x "$stvenv/bin/schemathesis" ]; then
  echo "pip: schemathesis $SCHEMATHESIS_VERSION"
  rm -rf "$stvenv"
  python3 -m venv "$stvenv"
  "$stvenv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
echo "$("$stvenv/bin/schemathesis" --version)"

if [ "$(id -u)" -eq 0 ]; then tests/cluster/build-tools.sh --real-node --argocd; else tests/cluster/build-tools.sh; fi
