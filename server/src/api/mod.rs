//! The HTTP surface: routes, OpenAPI document, and the layers every request goes through
//! (request id + access log + metrics + timeout, panic catcher, CORS, body limit).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::config::{CorsOrigins, LIVENESS_PATH, READINESS_PATH};
use crate::error::ApiError;
use crate::state::AppState;

pub mod assistants;
pub mod auth;
pub mod auth_token;
pub mod common;
pub mod docs;
pub mod document;
pub mod extract;
pub mod knowledge;
pub mod ops;
pub mod query;
pub mod ratelimit;
pub mod teammates;
pub mod tenants;
pub mod workspaces;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

const DESCRIPTION: &str = "Multi-tenant RAG platform API.\n\n\
Every `/api/v1` request except `POST /api/v1/auth/token` carries `Authorization: Bearer <JWT>`. \
Get a token with `oyl-server token --admin` / `--tenant ID`, or exchange a tenant API key at \
`POST /api/v1/auth/token`. The tenant collection (`/api/v1/tenants`) needs an admin token.\n\n";

#[derive(OpenApi)]
#[openapi(
    info(title = "Oyl RAG Platform"),
    components(schemas(crate::error::ErrorBody, crate::error::ValidationErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "operations", description = "Health, probes, metrics"),
        (name = "auth", description = "API key → JWT"),
        (name = "tenants"), (name = "workspaces"), (name = "teammates"), (name = "assistants"),
        (name = "knowledge", description = "Documents of an assistant's knowledge base"),
        (name = "query", description = "Ask a teammate")
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every route, with the OpenAPI document they make up. Routes that act inside a tenant go
/// through the tenant layer (authentication, then the tenant's rate limit).
fn api_router(state: &AppState) -> OpenApiRouter<AppState> {
    let mut tenant_routes = OpenApiRouter::new()
        .merge(tenants::router())
        .merge(workspaces::router())
        .merge(teammates::router())
        .merge(assistants::router())
        .merge(knowledge::router(state.config.max_upload_bytes))
        .merge(query::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::tenant_layer,
        ));
    document::tenant_routes(tenant_routes.get_openapi_mut());
    let mut admin_routes = tenants::admin_router();
    document::admin_routes(admin_routes.get_openapi_mut());
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops::router())
        .merge(auth_token::router())
        .merge(admin_routes)
        .merge(tenant_routes);
    let doc = router.get_openapi_mut();
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(
            crate::bounds::JSON_WITHOUT_NUL.into(),
            crate::bounds::json_without_nul().into(),
        );
    document::all_routes(doc);
    document::links(doc);
    doc.info.description = Some(format!("{DESCRIPTION}{}", document::TENANCY_RULES));
    router
}

pub fn build_router(state: AppState) -> Router {
    let config = &state.config;
    let (router, mut doc) = api_router(&state).split_for_parts();
    doc.info.title = config.app_name.clone();
    doc.info.version = config.app_version.clone();
    let json = doc.to_json().expect("the OpenAPI document serialises");
    router
        .merge(docs::router(&config.app_name, json))
        .fallback(|| async { ApiError::NotFound("Not Found".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("handler panicked");
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(cors_layer(&config.cors_origins))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Only the operational endpoints (for `oyl-server worker`).
pub fn ops_router(state: AppState) -> Router {
    let (router, _) = OpenApiRouter::new().merge(ops::router()).split_for_parts();
    router
        .fallback(|| async { ApiError::NotFound("Not Found".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-tenant-id"),
            HeaderName::from_static(REQUEST_ID_HEADER),
        ])
        .expose_headers([
            HeaderName::from_static(REQUEST_ID_HEADER),
            header::RETRY_AFTER,
        ]);
    match origins {
        CorsOrigins::None => CorsLayer::new(),
        CorsOrigins::Any => base.allow_origin(AllowOrigin::any()),
        CorsOrigins::List(list) => {
            let values: Vec<HeaderValue> = list
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect();
            base.allow_origin(AllowOrigin::list(values))
        }
    }
}

/// An incoming request id is kept when it is short and printable; otherwise a new one is made.
fn request_id(req: &Request) -> HeaderValue {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// A new request id: a UUID (version 4 format) made of a random per-process prefix and a
/// per-process counter, scrambled by a bijection (so ids are unique in the process, unique across
/// processes but with a chance of 2^-60, and do not show how many requests came before), without
/// a `getrandom` system call per request.
fn new_request_id() -> HeaderValue {
    static SEED: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (prefix, key) = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&prefix.to_be_bytes());
    // 62 bits: the top two of byte 8 become the variant.
    bytes[8..].copy_from_slice(&scramble62(n ^ key).to_be_bytes());
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
        .expect("a UUID is a header value")
}

/// A bijection of the numbers below 2^62 (splitmix64's finaliser, with every step kept to 62 bits).
fn scramble62(x: u64) -> u64 {
    const MASK: u64 = (1 << 62) - 1;
    let mut x = x & MASK;
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9) & MASK;
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb) & MASK;
    x ^ (x >> 31)
}

/// Request id, access log, metrics by route template and the request timeout, in one place.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = request_id(&req);
    // Checked printable ASCII (incoming) or a UUID (generated).
    let id_str = id.to_str().unwrap_or_default();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route_label = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        request_id = %id_str,
        method = %method,
        route = %route_label,
        path = %req.uri().path(),
        tenant_id = tracing::field::Empty,
        subject = tracing::field::Empty,
    );
    span.in_scope(|| tracing::debug!("request started"));
    let in_flight = InFlight::start(&state.metrics.http_in_flight);
    let timeout = state.config.request_timeout;
    let mut response = match tokio::time::timeout(timeout, next.run(req).instrument(span.clone()))
        .await
    {
        Ok(response) => response,
        Err(_) => {
            span.in_scope(|| tracing::warn!(timeout_secs = timeout.as_secs(), "request timed out"));
            ApiError::Timeout.into_response()
        }
    };
    drop(in_flight);
    let elapsed = start.elapsed();
    let status = response.status();
    state.metrics.observe_request(
        method.as_str(),
        route_label,
        status.as_str(),
        elapsed.as_secs_f64(),
    );
    let status = status.as_u16();
    let quiet = matches!(route_label, LIVENESS_PATH | READINESS_PATH | "/metrics");
    response.headers_mut().insert(REQUEST_ID_HEADER, id);
    span.in_scope(|| {
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        if quiet && status < 400 {
            tracing::debug!(status, latency_ms, "request completed");
        } else if status >= 500 {
            tracing::error!(status, latency_ms, "request completed");
        } else {
            tracing::info!(status, latency_ms, "request completed");
        }
    });
    response
}

/// Counts a request as in flight until dropped (also when the client goes away mid-request).
struct InFlight<'a>(&'a prometheus::IntGauge);

impl<'a> InFlight<'a> {
    fn start(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_request_ids_are_distinct_uuids() {
        let ids: std::collections::HashSet<String> = (0..50_000)
            .map(|_| new_request_id().to_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 50_000);
        for id in ids.iter().take(100) {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id.len(), 36);
        }
    }

    #[test]
    fn scramble62_stays_in_62_bits_without_collisions() {
        let top = 1u64 << 62;
        let mut seen = std::collections::HashSet::new();
        for x in (0..100_000).chain(top - 100_000..top) {
            let y = scramble62(x);
            assert!(y < top);
            assert!(seen.insert(y), "{x}");
        }
        // Neighbours land far apart.
        assert!(scramble62(1).abs_diff(scramble62(2)) > 1 << 40);
    }

    #[test]
    fn incoming_request_ids_are_kept_when_short_and_printable() {
        let with = |value: &[u8]| {
            let mut req = Request::new(axum::body::Body::empty());
            req.headers_mut()
                .insert(REQUEST_ID_HEADER, HeaderValue::from_bytes(value).unwrap());
            request_id(&req)
        };
        assert_eq!(with(b"abc-123"), "abc-123");
        let long = "x".repeat(128);
        assert_eq!(with(long.as_bytes()), long.as_str());
        for bad in [
            &b""[..],
            b"has space",
            b"tab\there",
            &[b'x'; 129],
            b"caf\xc3\xa9",
        ] {
            let got = with(bad);
            assert_ne!(got.as_bytes(), bad);
            assert_eq!(got.len(), 36);
        }
        assert_eq!(
            request_id(&Request::new(axum::body::Body::empty())).len(),
            36
        );
    }
}
