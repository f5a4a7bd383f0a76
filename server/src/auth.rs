//! Authentication (JWT bearer) and tenancy (`X-Tenant-ID`).
//!
//! * [`AdminAuth`]: a valid admin token (tenant creation and listing).
//! * [`TenantAuth`]: a valid token plus an `X-Tenant-ID` header it is allowed to act for; yields
//!   the [`TenantScope`] every repository call of a tenant-owned resource requires. A tenant token
//!   may only act for its own tenant (403 otherwise); an admin token may act for any tenant.
//!
//! Order of checks: no/invalid token → 401 (before anything else is revealed), missing or
//! malformed `X-Tenant-ID` → 422 naming the header, token not allowed for that tenant → 403.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::jwt::{Claims, Role};
use crate::ratelimit::Quota;
use crate::state::AppState;

pub const TENANT_HEADER: &str = "x-tenant-id";
/// Prefix of every API key, so leaked keys are easy to recognise (and to scan for).
pub const API_KEY_PREFIX: &str = "oyl_";

/// Proof that the caller may act inside one tenant. Only this module (and trusted local callers
/// such as the CLI, through [`TenantScope::trusted`]) can create one, so a repository call
/// without a checked scope does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: Uuid,
}

impl TenantScope {
    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// For code that runs with the operator's authority (CLI `seed`, `token`), never for
    /// request handling.
    pub fn trusted(tenant_id: Uuid) -> Self {
        TenantScope { tenant_id }
    }
}

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

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
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
        enforce_rate_limit(state, tenant_id, Budget::of(&parts.method)).await?;
        Ok(TenantAuth {
            scope: TenantScope { tenant_id },
            claims,
        })
    }
}

/// A tenant has two budgets, so that polling never uses up the budget for work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// GET and HEAD: cheap reads such as status polling.
    Reads,
    /// Everything else: uploads, queries, creates, updates, deletes.
    Work,
}

impl Budget {
    pub fn of(method: &axum::http::Method) -> Self {
        if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
            Budget::Reads
        } else {
            Budget::Work
        }
    }
}

/// The tenant's budget for this kind of request (`RATE_LIMIT_REQUESTS_PER_MINUTE` and
/// `RATE_LIMIT_BURST` for work, `RATE_LIMIT_READS_PER_MINUTE` and `RATE_LIMIT_READ_BURST` for
/// reads; 0 per minute disables one). A limiter failure lets the request through (logged, counted).
async fn enforce_rate_limit(
    state: &AppState,
    tenant_id: Uuid,
    budget: Budget,
) -> Result<(), ApiError> {
    let config = &state.config;
    let (per_minute, burst, key) = match budget {
        Budget::Work => (
            config.rate_limit_requests_per_minute,
            config.rate_limit_burst,
            format!("tenant:{tenant_id}"),
        ),
        Budget::Reads => (
            config.rate_limit_reads_per_minute,
            config.rate_limit_read_burst,
            format!("tenant:{tenant_id}:reads"),
        ),
    };
    if per_minute == 0 {
        return Ok(());
    }
    let quota = Quota { per_minute, burst };
    match state.limiter.check(&key, quota).await {
        Ok(decision) if decision.allowed => Ok(()),
        Ok(decision) => {
            state.metrics.rate_limited.inc();
            let retry_after_secs = u64::try_from((decision.retry_after_ms + 999) / 1000)
                .unwrap_or(1)
                .max(1);
            Err(ApiError::TooManyRequests { retry_after_secs })
        }
        Err(e) => {
            state.metrics.rate_limiter_errors.inc();
            tracing::warn!(error = %e, backend = state.limiter.backend(), "rate limiter unavailable: request let through");
            Ok(())
        }
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

/// A new API key: 32 random bytes, URL-safe, with a recognisable prefix.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .expect("the operating system's random number generator is available");
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// API keys are 256-bit random values, so a fast hash is enough (no password stretching needed),
/// and the hash can be looked up directly.
pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random signing key for when `SECRET_KEY` is unset (64 hex characters = 32 bytes of entropy).
pub fn generate_secret_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .expect("the operating system's random number generator is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_random_prefixed_and_hash_stably() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX) && a.len() == API_KEY_PREFIX.len() + 43);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(generate_secret_key().len(), 64);
    }
}
