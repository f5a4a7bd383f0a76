//! Health, probes and metrics (no authentication).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(livez))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    #[schema(example = "0.1.0")]
    pub version: String,
}

/// `/livez`: the process serves HTTP.
#[derive(Serialize, ToSchema)]
pub struct Alive {
    #[schema(example = "ok")]
    pub status: String,
}

/// What `/readyz` checked: `ok` or `unreachable: <why>`; Redis and Chroma only when configured.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ReadinessChecks {
    database: String,
    #[schema(nullable = false)]
    redis: Option<String>,
    #[schema(nullable = false)]
    chroma: Option<String>,
}

/// `/readyz` when ready: `ok`, or `degraded` while Redis or Chroma is unreachable (the rest of
/// the API still serves).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Ready {
    status: ReadyStatus,
    checks: ReadinessChecks,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ReadyStatus {
    Ok,
    Degraded,
}

/// `/readyz` when not ready: `detail` names the failing dependency.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct NotReady {
    #[schema(example = "unavailable")]
    status: String,
    detail: String,
    checks: ReadinessChecks,
}

/// Liveness and version, as the original served it.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: state.config.app_version.clone(),
    })
}

/// Kubernetes liveness probe: the process serves HTTP (dependencies are not checked).
#[utoipa::path(get, path = "/livez", tag = "operations", responses((status = 200, description = "Alive", body = Alive)))]
async fn livez() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Kubernetes readiness probe: 503 naming the failing dependency while the database is
/// unreachable or migrations are pending.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Ready), (status = 503, description = "Not ready: `detail` names the dependency", body = NotReady))
)]
async fn readyz(State(state): State<AppState>) -> Response {
    let timeout = state.config.database_timeout + std::time::Duration::from_secs(1);
    let database = match tokio::time::timeout(timeout, state.db.check_ready()).await {
        Ok(result) => result,
        Err(_) => Err("unreachable: timed out".to_string()),
    };
    // Redis (limits) and Chroma (vectors) are reported, not required: when they are down the rest
    // of the API still serves, so the replica stays in rotation with status "degraded".
    let redis = if state.config.redis_url.is_some() {
        Some(
            match tokio::time::timeout(timeout, state.limiter.health()).await {
                Ok(Ok(())) => "ok".to_string(),
                Ok(Err(e)) => format!("unreachable: {e}"),
                Err(_) => "unreachable: timed out".to_string(),
            },
        )
    } else {
        None
    };
    let chroma = match state.rag.vectors.health() {
        Some(check) => Some(match tokio::time::timeout(timeout, check).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => format!("unreachable: {e}"),
            Err(_) => "unreachable: timed out".to_string(),
        }),
        None => None,
    };
    let mut checks = serde_json::Map::new();
    checks.insert(
        "database".into(),
        json!(database.as_ref().err().map(String::as_str).unwrap_or("ok")),
    );
    if let Some(redis) = &redis {
        checks.insert("redis".into(), json!(redis));
    }
    if let Some(chroma) = &chroma {
        checks.insert("chroma".into(), json!(chroma));
    }
    match database {
        Ok(()) => {
            let degraded = [&redis, &chroma]
                .iter()
                .any(|c| c.as_deref().is_some_and(|r| r != "ok"));
            if degraded {
                tracing::warn!(
                    redis = redis.as_deref(),
                    chroma = chroma.as_deref(),
                    "degraded"
                );
            }
            Json(json!({ "status": if degraded { "degraded" } else { "ok" }, "checks": checks }))
                .into_response()
        }
        Err(reason) => {
            tracing::warn!(%reason, "not ready: database");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "detail": format!("database: {reason}"),
                    "checks": checks,
                })),
            )
                .into_response()
        }
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    if let Ok(depth) = crate::db::documents::queue_depth(&state.db).await {
        state.metrics.set_queue_depth(depth);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(state.db.pool_stats()),
    )
        .into_response()
}
