//! The documentation UIs load everything from this server: no CDN, no internet.

use serde_json::json;

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
    assert_eq!(
        schemes.as_object().unwrap().len(),
        1,
        "X-Tenant-ID is a parameter, not a credential"
    );
    assert!(
        spec["info"]["description"]
            .as_str()
            .unwrap()
            .contains("the resource's own tenant is the scope"),
        "the tenancy rules are in the description"
    );
    // Every status the layers and extractors can answer, with its real body.
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let responses = &op["responses"];
            let what = format!("{method} {path}");
            assert!(responses["503"].is_object(), "{what}: 503");
            let tenant_route = path.starts_with("/api/v1/") && path.contains('{');
            let header = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["in"] == "header" && p["name"] == "X-Tenant-ID");
            assert_eq!(header.is_some(), tenant_route, "{what}: X-Tenant-ID");
            if let Some(header) = header {
                assert_eq!(header["required"], false, "{what}");
                assert_eq!(header["schema"]["format"], "uuid", "{what}");
                for status in ["403", "404", "422", "429"] {
                    assert!(responses[status].is_object(), "{what}: {status}");
                }
                assert!(
                    responses["429"]["headers"]["Retry-After"].is_object(),
                    "{what}"
                );
            }
            if path.starts_with("/api/v1/") && path != "/api/v1/auth/token" {
                assert_eq!(op["security"], json!([{"bearer": []}]), "{what}");
                assert!(
                    responses["401"]["headers"]["WWW-Authenticate"].is_object(),
                    "{what}"
                );
            }
            if op["requestBody"]["content"]["application/json"].is_object() {
                for status in ["400", "413", "422"] {
                    assert!(responses[status].is_object(), "{what}: {status}");
                }
            }
            if let Some(body) =
                responses["422"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                assert_eq!(body, "#/components/schemas/ValidationErrorBody", "{what}");
            }
        }
    }
    // A 422's `loc` holds names and indexes, as the server answers.
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["FieldError"]["properties"]["loc"]["items"]["$ref"],
        "#/components/schemas/LocItem"
    );
    let loc_types: Vec<&str> = schemas["LocItem"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(loc_types, ["string", "integer"]);
    // The bounds the server enforces.
    let limit = paths["/api/v1/tenants"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
        (&json!(1), &json!(100))
    );
    let name = &schemas["NameBody"]["properties"]["name"];
    assert_eq!(
        (&name["minLength"], &name["maxLength"]),
        (&json!(1), &json!(255))
    );
    assert!(
        name["pattern"]
            .as_str()
            .unwrap()
            .starts_with("^[^\\u0000]*")
    );
    assert_eq!(
        schemas["ProcessBatchRequest"]["properties"]["document_ids"]["maxItems"],
        100
    );
    // Links chain create → read → update → delete, in the created resource's tenant.
    let created = &paths["/api/v1/tenants/{tenant_id}/workspaces"]["post"]["responses"]["201"];
    for target in [
        "get_workspace",
        "patch_workspace",
        "delete_workspace",
        "create_teammate",
    ] {
        let link = &created["links"][target];
        assert_eq!(link["operationId"], target);
        assert_eq!(
            link["parameters"]["path.workspace_id"],
            "$response.body#/id"
        );
        assert_eq!(
            link["parameters"]["header.X-Tenant-ID"],
            "$response.body#/tenant_id"
        );
    }
    let tenant_links = &paths["/api/v1/tenants"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        tenant_links["get_tenant"]["parameters"]["header.X-Tenant-ID"],
        "$response.body#/id"
    );
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
        "ValidationErrorBody",
        "ErrorBody",
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
