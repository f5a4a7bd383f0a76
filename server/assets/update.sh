#!/usr/bin/env bash
# Refreshes the vendored documentation UIs from npm (the only network access; run by hand, never
# at build time). The server embeds these files with include_bytes!, so /docs and /redoc work with
# no internet and the build downloads nothing.
#
#   server/assets/update.sh            # versions below
#   SWAGGER_UI_VERSION=5.36.0 REDOC_VERSION=2.5.5 server/assets/update.sh
set -euo pipefail
SWAGGER_UI_VERSION="${SWAGGER_UI_VERSION:-5.35.0}"
REDOC_VERSION="${REDOC_VERSION:-2.5.4}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

npm pack --silent "swagger-ui-dist@${SWAGGER_UI_VERSION}" >/dev/null
mkdir swagger && tar xzf "swagger-ui-dist-${SWAGGER_UI_VERSION}.tgz" -C swagger
for f in swagger-ui-bundle.js swagger-ui.css favicon-16x16.png favicon-32x32.png LICENSE NOTICE; do
  cp "swagger/package/$f" "$here/swagger-ui/$f"
done

npm pack --silent "redoc@${REDOC_VERSION}" >/dev/null
mkdir redoc && tar xzf "redoc-${REDOC_VERSION}.tgz" -C redoc
cp redoc/package/LICENSE "$here/redoc/LICENSE"
# The only remote resource the bundle loads is the "API docs by Redocly" logo; point it at our own
# copy so the page makes no request to a CDN.
sed 's#https://cdn.redoc.ly/redoc/logo-mini.svg#/redoc/logo-mini.svg#g' \
  redoc/package/bundles/redoc.standalone.js > "$here/redoc/redoc.standalone.js"
if grep -q 'cdn.redoc.ly' "$here/redoc/redoc.standalone.js"; then
  echo "redoc bundle still references cdn.redoc.ly" >&2; exit 1
fi

cat > "$here/VERSIONS" <<VERSIONS
swagger-ui-dist ${SWAGGER_UI_VERSION} (Apache-2.0, https://www.npmjs.com/package/swagger-ui-dist)
redoc ${REDOC_VERSION} (MIT, https://www.npmjs.com/package/redoc; logo URL rewritten to /redoc/logo-mini.svg)
VERSIONS
(cd "$here" && sha256sum swagger-ui/* redoc/*.js > SHA256SUMS)
echo "updated: swagger-ui-dist ${SWAGGER_UI_VERSION}, redoc ${REDOC_VERSION}"
