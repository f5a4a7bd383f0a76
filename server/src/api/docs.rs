//! `/docs` (Swagger UI), `/redoc` (ReDoc) and `/openapi.json`, entirely from files embedded in
//! the binary (see `server/assets/update.sh`): no CDN at run time, no download at build time.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const SWAGGER_BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");
const FAVICON_32: &[u8] = include_bytes!("../../assets/swagger-ui/favicon-32x32.png");
const FAVICON_16: &[u8] = include_bytes!("../../assets/swagger-ui/favicon-16x16.png");
const REDOC_BUNDLE: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");
const REDOC_LOGO: &[u8] = include_bytes!("../../assets/redoc/logo-mini.svg");

const SWAGGER_INITIALIZER: &str = r##"window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
};
"##;

/// Only our own origin; inline styles are needed by both UIs, blob workers by ReDoc's search.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
     frame-ancestors 'self'; base-uri 'self'; form-action 'self'";

fn swagger_html(title: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - Swagger UI</title>
  <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js" charset="utf-8"></script>
  <script src="/docs/swagger-initializer.js" charset="utf-8"></script>
</body>
</html>
"#,
        title = html_escape(title)
    )
}

fn redoc_html(title: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - ReDoc</title>
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  <style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="/redoc/redoc.standalone.js" charset="utf-8"></script>
</body>
</html>
"#,
        title = html_escape(title)
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

fn page(html: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        html,
    )
        .into_response()
}

/// The documentation routes; `openapi_json` is the serialised document.
pub fn router<S: Clone + Send + Sync + 'static>(title: &str, openapi_json: String) -> Router<S> {
    let swagger = swagger_html(title);
    let redoc = redoc_html(title);
    let swagger_slash = swagger.clone();
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let body = openapi_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        )
        .route(
            "/docs",
            get(move || std::future::ready(page(swagger.clone()))),
        )
        .route(
            "/docs/",
            get(move || std::future::ready(page(swagger_slash.clone()))),
        )
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| async { asset("text/javascript; charset=utf-8", SWAGGER_BUNDLE) }),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|| async { asset("text/css; charset=utf-8", SWAGGER_CSS) }),
        )
        .route(
            "/docs/swagger-initializer.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    SWAGGER_INITIALIZER.as_bytes(),
                )
            }),
        )
        .route(
            "/docs/favicon-32x32.png",
            get(|| async { asset("image/png", FAVICON_32) }),
        )
        .route(
            "/docs/favicon-16x16.png",
            get(|| async { asset("image/png", FAVICON_16) }),
        )
        .route(
            "/redoc",
            get(move || std::future::ready(page(redoc.clone()))),
        )
        .route(
            "/redoc/redoc.standalone.js",
            get(|| async { asset("text/javascript; charset=utf-8", REDOC_BUNDLE) }),
        )
        .route(
            "/redoc/logo-mini.svg",
            get(|| async { asset("image/svg+xml", REDOC_LOGO) }),
        )
}
