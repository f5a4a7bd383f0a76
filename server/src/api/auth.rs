//! Authentication (JWT bearer) and tenancy (`X-Tenant-ID`): the extractors handlers take.
//!
//! * [`AdminAuth`]: a valid admin token (tenant creation and listing).
//! * [`TenantAuth`]: a valid token plus an `X-Tenant-ID` header it is allowed to act for; yields
//!   the [`TenantScope`] every repository call of a tenant-owned resource requires. A tenant token
//!   may only act for its own tenant (403 otherwise); an admin token may act for any tenant.
//!   It is checked by the tenant layer ([`super::ratelimit::tenant_layer`], which then applies the
//!   tenant's rate limit) and handed to the handler from the request's extensions.
//!
//! Order of checks: no/invalid token → 401 (before anything else is revealed), missing or
//! malformed `X-Tenant-ID` → 422 naming the header, token not allowed for that tenant → 403.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::jwt::{Claims, Role};
use crate::state::AppState;
use crate::tenancy::TenantScope;

pub const TENANT_HEADER: &str = "x-tenant-id";

/// The decoded, verified claims of the bearer token.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Claims);

/// A verified admin token.
#[derive(Clone, Debug)]
pub struct AdminAuth(pub Claims);

/// A verified token allowed to act inside the tenant named by `X-Tenant-ID`.
#[derive(Clone, Debug)]
pub struct TenantAuth {
    pub scope: TenantScope,
    pub claims: Claims,
}

impl TenantAuth {
    pub fn is_admin(&self) -> bool {
        self.claims.role == Role::Admin
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("Not authenticated".into()))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("Not authenticated".into()))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("Not authenticated".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized(
            "Invalid authentication scheme (expected Bearer)".into(),
        ));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let claims = state
            .jwt
            .decode(token, chrono::Utc::now().timestamp())
            .map_err(|err| {
                tracing::info!(reason = %err, "rejected bearer token");
                ApiError::Unauthorized("Could not validate credentials".into())
            })?;
        tracing::Span::current().record("subject", claims.sub.as_str());
        Ok(Authenticated(claims))
    }
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        if claims.role != Role::Admin {
            return Err(ApiError::Forbidden("Admin token required".into()));
        }
        Ok(AdminAuth(claims))
    }
}

impl TenantAuth {
    /// Checks the token and the tenant it acts for (the tenant layer's first step).
    pub async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        let tenant_id = tenant_header(&parts.headers)?;
        match claims.role {
            Role::Admin => {}
            Role::Tenant if claims.tenant_id == Some(tenant_id) => {}
            Role::Tenant => {
                return Err(ApiError::Forbidden(
                    "Token is not valid for this tenant".into(),
                ));
            }
        }
        tracing::Span::current().record("tenant_id", tracing::field::display(tenant_id));
        Ok(TenantAuth {
            scope: TenantScope::checked(tenant_id),
            claims,
        })
    }
}

/// What the tenant layer checked (it runs before the handler on every tenant route).
impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TenantAuth>()
            .cloned()
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "a tenant route is served without the tenant layer"
                ))
            })
    }
}

fn tenant_header(headers: &HeaderMap) -> Result<Uuid, ApiError> {
    let loc = ["header", TENANT_HEADER];
    let value = headers.get(TENANT_HEADER).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(loc, "Field required", "missing")])
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                loc,
                "Input should be a valid UUID",
                "uuid_parsing",
            )])
        })
}
