//! The bare-axum ceiling: the same runtime (tokio multi-thread), the same framework (axum 0.8,
//! HTTP/1), the same release profile as oyl-server, and handlers that do nothing but answer
//! a constant JSON body of the same shape and size as oyl-server's. What oyl-server adds on top
//! (middleware, auth, tenancy, the database) is the difference to this.
//!
//!     ceiling --port 18080
use axum::Router;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok", "version": "0.1.0"}))
}

/// Same response shape as `GET /api/v1/tenants/{id}`; reads the two headers oyl-server reads.
async fn tenant(Path(id): Path<String>, headers: HeaderMap) -> impl IntoResponse {
    let authorized = headers.contains_key("authorization") && headers.contains_key("x-tenant-id");
    axum::Json(serde_json::json!({
        "id": id,
        "name": if authorized { "Bench Tenant" } else { "?" },
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut port = 18080u16;
    while let Some(a) = args.next() {
        if a == "--port" {
            port = args.next().and_then(|p| p.parse().ok()).expect("--port N");
        }
    }
    let app = Router::new()
        .route("/health", get(health))
        .route("/api/v1/tenants/{id}", get(tenant));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
}
