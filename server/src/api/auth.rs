//! Authentication (JWT bearer) and tenancy (`X-Tenant-ID`): the extractors handlers take.
//!
//! * [`AdminAuth`]: a valid admin token (tenant creation and listing).
//! * [`TenantAuth`]: a valid token and the one tenant the request acts in; yields the
//!   [`TenantScope`] every repository call of a tenant-owned resource requires. It is checked by
//!   the tenant layer ([`super::ratelimit::tenant_layer`], which then applies the tenant's rate
//!   limit) and handed to the handler from the request's extensions.
//!
//! Which tenant (the scope), see [`TenantAuth::authenticate`]:
//! * `X-Tenant-ID`, when given, is the scope. A tenant token may only name its own tenant (403
//!   otherwise); an admin token may name any.
//! * Without the header, a tenant token acts in its own tenant (the only one it may act in).
//! * Without the header, an admin token acts in the tenant the path names
//!   (`/tenants/{tenant_id}/...`), or, addressing a resource by its id (`/workspaces/{id}`, ...),
//!   in the resource's own tenant; an unknown or malformed id is a 404.
//! * Otherwise (an admin token on a route with no id: none today) the header is required (422).
//!
//! Handlers then answer 404 for anything outside the scope, so a path tenant that differs from
//! the header, or another tenant's resource, does not exist for the caller.
//!
//! Order of checks: no/invalid token → 401 (before anything else is revealed), malformed
//! `X-Tenant-ID` → 422 naming the header, token not allowed for that tenant → 403.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use uuid::Uuid;

use crate::api::extract::parse_id;
use crate::bounds::parse_uuid;
use crate::db::owners::{self, Owned};
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

/// What the path of a tenant route addresses, by the id as given (not yet parsed).
enum Addressed {
    /// `/tenants/{tenant_id}/...`
    Tenant(String),
    /// `/workspaces/{workspace_id}/...` and the like.
    Resource(Owned, String),
    /// A route with no id in its path.
    Nothing,
}

async fn addressed(parts: &mut Parts, state: &AppState) -> Addressed {
    let Ok(params) = RawPathParams::from_request_parts(parts, state).await else {
        return Addressed::Nothing;
    };
    for (name, value) in &params {
        if name == "tenant_id" {
            return Addressed::Tenant(value.to_string());
        }
        if let Some(kind) = Owned::of_path_parameter(name) {
            return Addressed::Resource(kind, value.to_string());
        }
    }
    Addressed::Nothing
}

impl TenantAuth {
    /// Checks the token and decides the tenant the request acts in (the tenant layer's first
    /// step); see the module's documentation for the rules.
    pub async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        let header = tenant_header(&parts.headers)?;
        let tenant_id = match claims.role {
            Role::Tenant => {
                let own = claims.tenant_id.ok_or_else(|| {
                    ApiError::Forbidden("Token is not valid for this tenant".into())
                })?;
                match header {
                    Some(named) if named != own => {
                        return Err(ApiError::Forbidden(
                            "Token is not valid for this tenant".into(),
                        ));
                    }
                    _ => own,
                }
            }
            Role::Admin => match (header, addressed(parts, state).await) {
                (Some(named), _) => named,
                (None, Addressed::Tenant(raw)) => parse_id(&raw, "Tenant")?,
                (None, Addressed::Resource(kind, raw)) => {
                    let id = parse_id(&raw, kind.name())?;
                    owners::tenant_of(&state.db, kind, id)
                        .await?
                        .ok_or_else(|| ApiError::not_found(kind.name()))?
                }
                (None, Addressed::Nothing) => return Err(missing_tenant_header()),
            },
        };
        tracing::Span::current().record("tenant_id", tracing::field::display(tenant_id));
        Ok(TenantAuth {
            scope: TenantScope::checked(tenant_id),
            claims,
        })
    }
}

fn missing_tenant_header() -> ApiError {
    ApiError::validation(vec![FieldError::new(
        ["header", TENANT_HEADER],
        "Field required",
        "missing",
    )])
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

/// `X-Tenant-ID`, when given; 422 naming it when it is not a UUID.
fn tenant_header(headers: &HeaderMap) -> Result<Option<Uuid>, ApiError> {
    let Some(value) = headers.get(TENANT_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| parse_uuid(v.trim()))
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                ["header", TENANT_HEADER],
                "Input should be a valid UUID",
                "uuid_parsing",
            )])
        })
}
