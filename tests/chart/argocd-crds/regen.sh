#!/usr/bin/env bash
# Rewrites application-crd.yaml from an argoproj/argo-cd checkout: the Application CRD with
# schema descriptions removed and the status/operation schemas (which config/argocd/ never sets)
# reduced to "any object". Usage: regen.sh /path/to/argo-cd [tag, default v3.5.1]
set -euo pipefail
repo=$1 tag=${2:-v3.5.1}
out="$(dirname "$0")/application-crd.yaml"
git -C "$repo" show "$tag:manifests/crds/application-crd.yaml" | python3 -c '
import sys, yaml
tag = sys.argv[1]
crd = yaml.safe_load(sys.stdin)
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
crd = strip(crd)
for version in crd["spec"]["versions"]:
    props = version["schema"]["openAPIV3Schema"]["properties"]
    for field in ("status", "operation"):
        props[field] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
print(f"""# The Argo CD Application CRD of argoproj/argo-cd {tag} (manifests/crds/application-crd.yaml),
# without schema descriptions and with the status and operation schemas reduced to "any object";
# the spec schema is untouched. tests/e2e/chart.rs installs it to validate config/argocd/ on the
# API server. Regenerate with tests/chart/argocd-crds/regen.sh.""")
print(yaml.safe_dump(crd, sort_keys=False, width=1000), end="")
' "$tag" > "$out"
echo "wrote $out" >&2
