use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn json_bodies_over_the_limit_are_413() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "2048")]).await;
    let resp = app
        .post(
            &app.admin(),
            "/api/v1/tenants",
            json!({"name": "x".repeat(4096)}),
        )
        .await;
    assert_eq!(
        (resp.status, resp.body["detail"].as_str()),
        (413, Some("Request body too large")),
        "{}",
        resp.text
    );
    let ok = app
        .post(&app.admin(), "/api/v1/tenants", json!({"name": "small"}))
        .await;
    assert_eq!(ok.status, 201);
}

#[tokio::test]
async fn slow_requests_time_out_with_a_json_503() {
    let app = spawn_app_with(&[("REQUEST_TIMEOUT_SECONDS", "1")]).await;
    let token = app.admin().token.unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    // Promise 100 bytes, send 10, then stall: the handler is stuck reading the body.
    let head = format!(
        "POST /api/v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": \""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut response = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut response))
        .await
        .expect("an answer")
        .unwrap();
    let response = String::from_utf8_lossy(&response[..n]);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.contains(r#"{"detail":"Request timed out"}"#),
        "{response}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[tokio::test]
async fn cors_is_off_by_default_and_configurable() {
    let app = spawn_app().await;
    let preflight = |app: &crate::helpers::TestApp, origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/tenants"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,x-tenant-id",
            )
            .send()
    };
    let resp = preflight(&app, "https://app.example").await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    let app = spawn_app_with(&[("CORS_ORIGINS", "https://app.example")]).await;
    let resp = preflight(&app, "https://app.example").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let allowed = resp.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("x-tenant-id"),
        "{allowed}"
    );
    let other = preflight(&app, "https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let simple = app
        .client
        .get(app.url("/health"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://app.example"
    );

    let app = spawn_app_with(&[("CORS_ORIGINS", "*")]).await;
    let resp = preflight(&app, "https://anywhere.example").await.unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
}
