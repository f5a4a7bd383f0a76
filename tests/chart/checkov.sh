#!/usr/bin/env bash
# checkov (PyPI) on what this repository deploys:
#   chart     helm template of charts/oyl-operator with the default values and every ci/*.yaml
#             (helm test hook included), networkPolicy on as well as off;
#   children  `oyl-operator render` of every OylPlatform in config/samples/.
# Passes when every failed check is listed for its scope, with the reason it does not apply, in
# .ci/checkov-skips.yaml, and every listed check still fails somewhere (no stale skips).
# Needs: checkov (or CHECKOV=/path/to/checkov), helm on PATH, a built operator
# (OYL_OPERATOR_BIN, default target/debug/oyl-operator).
# Install checkov:  python3 -m venv ~/.cache/oyl/checkov-venv &&
#                   ~/.cache/oyl/checkov-venv/bin/pip install checkov==3.3.30
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/cluster/lib.sh
export PATH="$TOOLS_PATH:$PATH"
CHECKOV="${CHECKOV:-$(command -v checkov || echo "$OYL_CACHE/checkov-venv/bin/checkov")}"
[ -x "$CHECKOV" ] || { echo "checkov not found: pip install checkov==3.3.30 (see the header)" >&2; exit 1; }
# checkov's own interpreter has PyYAML.
PY="$(dirname "$CHECKOV")/python"; [ -x "$PY" ] || PY=python3
OPERATOR="${OYL_OPERATOR_BIN:-${CARGO_TARGET_DIR:-target}/debug/oyl-operator}"
[ -x "$OPERATOR" ] || { echo "$OPERATOR missing: cargo build -p oyl-operator" >&2; exit 1; }
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT/chart" "$OUT/children"
KV="${K8S_VERSION#v}"

render() { # render NAME helm-args...
  local name=$1; shift
  helm template oyl charts/oyl-operator --namespace oyl-system --kube-version "$KV" "$@" > "$OUT/chart/$name.yaml"
}
render default
render default-networkpolicy --set networkPolicy.enabled=true
for f in charts/oyl-operator/ci/*.yaml; do
  render "$(basename "$f" .yaml)" -f "$f"
done
for f in config/samples/*.yaml; do
  "$OPERATOR" render -f "$f" --namespace oyl > "$OUT/children/$(basename "$f")"
done

# One run per file: checkov's graph checks (e.g. "every pod has a NetworkPolicy") would otherwise
# match objects of different renderings against each other.
for scope in chart children; do
  for f in "$OUT/$scope"/*.yaml; do
    echo "== checkov: $scope/$(basename "$f")"
    "$CHECKOV" --file "$f" --framework kubernetes --compact --soft-fail --output json \
      > "${f%.yaml}.json" 2> "$OUT/checkov.err" || { cat "$OUT/checkov.err" >&2; exit 1; }
  done
done

"$PY" - "$OUT" .ci/checkov-skips.yaml <<'PY'
import glob, json, os, sys, yaml
out, skips_file = sys.argv[1], sys.argv[2]
skips = yaml.safe_load(open(skips_file)) or {}
problems = []
for scope in ("chart", "children"):
    reports = []
    for path in sorted(glob.glob(f"{out}/{scope}/*.json")):
        report = json.load(open(path))
        for r in report if isinstance(report, list) else [report]:
            r["_file"] = os.path.basename(path)[: -len(".json")] + ".yaml"
            reports.append(r)
    allowed = skips.get(scope) or {}
    for check, entry in allowed.items():
        if not isinstance(entry, dict) or len(str(entry.get("reason", "")).strip()) < 20:
            problems.append(f"{skips_file}: {scope}.{check} needs a reason")
    failed, passed = {}, 0
    for r in reports:
        if r.get("check_type") not in (None, "kubernetes"):
            continue
        results = r.get("results", {})
        passed += len(results.get("passed_checks", []))
        for f in results.get("failed_checks", []):
            where = f"{r['_file']}: {f['resource']}"
            failed.setdefault(f["check_id"], []).append((f["check_name"], where))
    if passed == 0:
        problems.append(f"{scope}: checkov passed no check at all; did it scan anything?")
    for check, hits in sorted(failed.items()):
        status = "skipped" if check in allowed else "FAILED"
        print(f"{scope}: {status} {check} {hits[0][0]} ({len(hits)}x, e.g. {hits[0][1]})")
        if check not in allowed:
            problems.append(f"{scope}: {check} fails and is not in {skips_file}")
    for check, entry in sorted(allowed.items()):
        for name in entry.get("must_pass_in") or []:
            if not any(r["_file"] == name for r in reports):
                problems.append(f"{scope}: {check} must_pass_in names {name}, not rendered")
            for _, where in failed.get(check, []):
                if where.startswith(name + ":"):
                    problems.append(f"{scope}: {check} fails in {where}, where it must pass")
    for check in sorted(set(allowed) - set(failed)):
        problems.append(f"{scope}: {check} is in {skips_file} but passes now: remove it")
    print(f"{scope}: {passed} passed, {sum(len(h) for h in failed.values())} failed "
          f"({len(failed)} distinct checks, {len(set(failed) & set(allowed))} of them skipped)")
if problems:
    print("\n".join(["", "checkov:"] + ["  " + p for p in problems]), file=sys.stderr)
    sys.exit(1)
print("checkov: no failed check outside .ci/checkov-skips.yaml")
PY
