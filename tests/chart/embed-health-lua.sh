#!/usr/bin/env bash
# Rewrites the copies of config/argocd/health.lua embedded in config/argocd/argocd-cm-patch.yaml
# and config/argocd/argo-cd-values.yaml (tests/e2e/argocd_health.rs checks they are equal).
set -euo pipefail
cd "$(dirname "$0")/../../config/argocd"
python3 - <<'PY'
import re
lua = open("health.lua").read()
def indent(text, n):
    return "".join((" " * n + l) if l.strip() else l for l in text.splitlines(True))
key = "resource.customizations.health.oyl.dev_OylPlatform: |\n"
for path, n in (("argocd-cm-patch.yaml", 4), ("argo-cd-values.yaml", 6)):
    doc = open(path).read()
    start = doc.index(key) + len(key)
    # The block ends at the next line indented less than the block (the next key).
    m = re.compile(r"^ {0,%d}\S" % (n - 1), re.M).search(doc, start)
    end = m.start() if m else len(doc)
    open(path, "w").write(doc[:start] + indent(lua, n) + doc[end:])
    print("updated", path)
PY
