//! The documentation UIs load everything from this server: no CDN, no internet.

use crate::helpers::{Caller, TestApp, spawn_app};

/// Every `src="..."`, `href="..."` and `spec-url="..."` value of an HTML page.
fn referenced_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attr in ["src=\"", "href=\"", "spec-url=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attr) {
            let after = &rest[start + attr.len()..];
            let end = after.find('"').expect("closed attribute");
            urls.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    urls
}

async fn fetch_all_local(app: &TestApp, page: &str) -> Vec<(String, String, usize)> {
    let resp = app.get(&Caller::anonymous(), page).await;
    assert_eq!(resp.status, 200, "{page}");
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = resp
        .header("content-security-policy")
        .expect("a CSP on the docs pages");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let urls = referenced_urls(&resp.text);
    assert!(urls.len() >= 2, "{page} references {urls:?}");
    let mut fetched = Vec::new();
    for url in urls {
        assert!(
            url.starts_with('/') && !url.starts_with("//"),
            "{page} loads a non-local resource: {url}"
        );
        let asset = app.client.get(app.url(&url)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{url}");
        let content_type = asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let size = asset.bytes().await.unwrap().len();
        assert!(size > 0, "{url} is empty");
        fetched.push((url, content_type, size));
    }
    fetched
}

#[tokio::test]
async fn swagger_ui_is_served_entirely_locally() {
    let app = spawn_app().await;
    for page in ["/docs", "/docs/"] {
        let assets = fetch_all_local(&app, page).await;
        let find = |name: &str| {
            assets
                .iter()
                .find(|(u, _, _)| u.ends_with(name))
                .unwrap_or_else(|| panic!("{name} in {assets:?}"))
        };
        let (_, ct, size) = find("swagger-ui-bundle.js");
        assert!(
            ct.starts_with("text/javascript") && *size > 1_000_000,
            "{ct} {size}"
        );
        let (_, ct, size) = find("swagger-ui.css");
        assert!(ct.starts_with("text/css") && *size > 100_000);
        let (_, ct, _) = find("favicon-32x32.png");
        assert_eq!(ct, "image/png");
        find("swagger-initializer.js");
    }
    let init = app
        .get(&Caller::anonymous(), "/docs/swagger-initializer.js")
        .await
        .text;
    assert!(init.contains("url: \"/openapi.json\""), "{init}");
    assert!(
        init.contains("validatorUrl: null"),
        "no call to the public validator"
    );
}

#[tokio::test]
async fn redoc_is_served_entirely_locally() {
    let app = spawn_app().await;
    let assets = fetch_all_local(&app, "/redoc").await;
    let urls: Vec<&str> = assets.iter().map(|(u, _, _)| u.as_str()).collect();
    assert!(
        urls.contains(&"/redoc/redoc.standalone.js") && urls.contains(&"/openapi.json"),
        "{urls:?}"
    );
    let bundle = app
        .client
        .get(app.url("/redoc/redoc.standalone.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(bundle.len() > 1_000_000);
    assert!(
        !bundle.contains("cdn.redoc.ly"),
        "the only remote image of the bundle is rewritten to a local one"
    );
    assert!(bundle.contains("/redoc/logo-mini.svg"));
    let logo = app
        .client
        .get(app.url("/redoc/logo-mini.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            logo.status().as_u16(),
            logo.headers()["content-type"].to_str().unwrap()
        ),
        (200, "image/svg+xml")
    );
}

#[tokio::test]
async fn openapi_documents_every_endpoint() {
    let app = spawn_app().await;
    let resp = app.get(&Caller::anonymous(), "/openapi.json").await;
    assert_eq!(resp.status, 200);
    let spec = resp.body;
    assert_eq!(spec["info"]["title"], "Oyl RAG Platform");
    assert_eq!(spec["info"]["version"], "0.1.0");
    let expected: &[(&str, &[&str])] = &[
        ("/health", &["get"]),
        ("/livez", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/api/v1/auth/token", &["post"]),
        ("/api/v1/tenants", &["get", "post"]),
        (
            "/api/v1/tenants/{tenant_id}",
            &["get", "patch", "put", "delete"],
        ),
        ("/api/v1/tenants/{tenant_id}/workspaces", &["get", "post"]),
        (
            "/api/v1/workspaces/{workspace_id}",
            &["get", "patch", "put", "delete"],
        ),
        (
            "/api/v1/workspaces/{workspace_id}/teammates",
            &["get", "post"],
        ),
        (
            "/api/v1/teammates/{teammate_id}",
            &["get", "patch", "put", "delete"],
        ),
        (
            "/api/v1/teammates/{teammate_id}/assistants",
            &["get", "post"],
        ),
        ("/api/v1/teammates/{teammate_id}/query", &["post"]),
        (
            "/api/v1/assistants/{assistant_id}",
            &["get", "patch", "put", "delete"],
        ),
        (
            "/api/v1/assistants/{assistant_id}/instruction",
            &["get", "post", "put", "patch", "delete"],
        ),
        (
            "/api/v1/assistants/{assistant_id}/knowledge/upload",
            &["post"],
        ),
        (
            "/api/v1/assistants/{assistant_id}/knowledge/process-batch",
            &["post"],
        ),
        (
            "/api/v1/assistants/{assistant_id}/knowledge/status",
            &["get"],
        ),
        (
            "/api/v1/assistants/{assistant_id}/knowledge/documents",
            &["get"],
        ),
        (
            "/api/v1/documents/{document_id}",
            &["get", "patch", "put", "delete"],
        ),
    ];
    let paths = spec["paths"].as_object().unwrap();
    for (path, methods) in expected {
        let ops = paths.get(*path).unwrap_or_else(|| panic!("{path} missing"));
        for m in *methods {
            assert!(ops.get(*m).is_some(), "{m} {path} missing");
        }
    }
    assert_eq!(
        paths.len(),
        expected.len(),
        "undocumented extras: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["tenant"]["name"], "X-Tenant-ID");
    let create = &paths["/api/v1/tenants"]["post"];
    assert!(create["responses"]["409"].is_object() && create["responses"]["422"].is_object());
    for name in [
        "Tenant",
        "Workspace",
        "Teammate",
        "Assistant",
        "Document",
        "QueryResponse",
        "FieldError",
    ] {
        assert!(
            spec["components"]["schemas"][name].is_object(),
            "schema {name}"
        );
    }
}

/// Renders both UIs in a real headless browser that cannot resolve any host but 127.0.0.1, and
/// checks the operations appear. Needs a Chromium: `apt-get install chromium-headless-shell`, then
/// `TEST_BROWSER=chromium-headless-shell cargo test -p oyl-server --test api -- --ignored`.
#[tokio::test]
#[ignore = "needs a headless Chromium in TEST_BROWSER"]
async fn docs_render_in_a_browser_without_internet() {
    let browser =
        std::env::var("TEST_BROWSER").expect("TEST_BROWSER names a headless Chromium binary");
    let app = spawn_app().await;
    let profile = tempfile::tempdir().unwrap();
    for (page, expected) in [
        (
            "/docs",
            "data-path=\"/api/v1/teammates/{teammate_id}/query\"",
        ),
        ("/redoc", "Create a tenant (admin token)"),
    ] {
        let out = tokio::process::Command::new(&browser)
            .args([
                "--no-sandbox",
                "--disable-gpu",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000",
                &format!("--user-data-dir={}", profile.path().display()),
                "--dump-dom",
                &app.url(page),
            ])
            .output()
            .await
            .expect("the browser runs");
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            dom.contains(expected),
            "{page} did not render `{expected}` ({} bytes of DOM)",
            dom.len()
        );
    }
}
