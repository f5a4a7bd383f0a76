use serde_json::json;

use crate::helpers::{Caller, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_is_exactly_the_original_body() {
    let app = spawn_app().await;
    let resp = app.get(&Caller::anonymous(), "/health").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text, r#"{"status":"ok","version":"0.1.0"}"#);

    let app = spawn_app_with(&[("APP_VERSION", "2.3.4")]).await;
    let resp = app.get(&Caller::anonymous(), "/health").await;
    assert_eq!(resp.body, json!({"status": "ok", "version": "2.3.4"}));
}

#[tokio::test]
async fn probes_answer_json() {
    let app = spawn_app().await;
    let live = app.get(&Caller::anonymous(), "/livez").await;
    assert_eq!(
        (live.status, live.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let ready = app.get(&Caller::anonymous(), "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["checks"]["database"], "ok");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_like_fastapi() {
    let app = spawn_app().await;
    let resp = app.get(&Caller::anonymous(), "/api/v1/nothing-here").await;
    assert_eq!(
        (resp.status, resp.body.clone()),
        (404, json!({"detail": "Not Found"}))
    );
    let resp = app.delete(&Caller::anonymous(), "/health").await;
    assert_eq!(
        (resp.status, resp.body),
        (405, json!({"detail": "Method Not Allowed"}))
    );
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let app = spawn_app().await;
    let resp = app.get(&Caller::anonymous(), "/health").await;
    let generated = resp.header("x-request-id").expect("a request id");
    assert_eq!(generated.len(), 36, "{generated}");
    let resp = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    // A hostile id is replaced, not echoed.
    let resp = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"].len(), 500);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_expose_the_pool() {
    let app = spawn_app().await;
    let t = app.create_tenant("metrics").await;
    let (ws, _, _) = app.create_tree(&t).await;
    for _ in 0..3 {
        assert_eq!(
            app.get(&t.caller, &format!("/api/v1/workspaces/{ws}"))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        app.get(&t.caller, "/api/v1/workspaces/not-a-uuid")
            .await
            .status,
        404
    );
    let resp = app.get(&Caller::anonymous(), "/metrics").await;
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text;
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/v1/workspaces/{workspace_id}",status="200"} 3"#),
        "{text}"
    );
    assert!(text.contains(r#"http_requests_total{method="GET",route="/api/v1/workspaces/{workspace_id}",status="404"} 1"#));
    assert!(!text.contains(&ws), "raw ids must not become labels");
    assert!(text.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/workspaces/{workspace_id}\",le=\"0.005\"}"));
    assert!(text.contains("db_pool_connections{state=\"idle\"}"));
    assert!(text.contains("db_pool_connections{state=\"in_use\"}"));
    assert!(text.contains("db_pool_max_connections 5"));
    assert!(text.contains("oyl_build_info{version=\"0.1.0\"} 1"));
    assert!(
        text.contains("http_requests_in_flight 1"),
        "the scrape itself is in flight"
    );
}
