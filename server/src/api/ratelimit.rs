//! The tenant layer, on every route that acts inside a tenant: authenticates the request
//! ([`TenantAuth::authenticate`]: 401, 422 or 403 before anything else), then takes it from the
//! tenant's rate-limit budget ([`crate::ratelimit::admit`]: 429 with `Retry-After`). The checked
//! [`TenantAuth`] goes to the handler through the request's extensions.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::TenantAuth;
use crate::error::ApiError;
use crate::ratelimit::{self, Budget, Limited};
use crate::state::AppState;

pub async fn tenant_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let auth = match TenantAuth::authenticate(&mut parts, &state).await {
        Ok(auth) => auth,
        Err(e) => return e.into_response(),
    };
    let budget = Budget::of(&parts.method);
    let tenant_id = auth.scope.tenant_id();
    if let Err(Limited { retry_after_secs }) = ratelimit::admit(
        state.limiter.as_ref(),
        &state.config,
        &state.metrics,
        tenant_id,
        budget,
    )
    .await
    {
        return ApiError::TooManyRequests { retry_after_secs }.into_response();
    }
    parts.extensions.insert(auth);
    next.run(Request::from_parts(parts, body)).await
}
