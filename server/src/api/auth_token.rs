use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::extract::{ApiJson, Validate};
use crate::bounds::{self, API_KEY};
use crate::db;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError, ValidationErrorBody};
use crate::jwt::{Role, claims_for};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue_token))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The key returned when the tenant was created.
    #[schema(schema_with = bounds::api_key)]
    pub api_key: String,
}

impl Validate for TokenRequest {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        API_KEY.check("api_key", &self.api_key, errors);
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Send this as `X-Tenant-ID` with the token.
    pub tenant_id: Uuid,
}

/// Exchange a tenant API key for a JWT (no token needed).
#[utoipa::path(
    post, path = "/api/v1/auth/token", tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Unknown API key", body = ErrorBody),
        (status = 422, body = ValidationErrorBody),
    )
)]
async fn issue_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let (key_id, tenant_id) = db::tenants::find_api_key(&state.db, body.api_key.trim())
        .await?
        .ok_or_else(|| ApiError::Unauthorized("Invalid API key".into()))?;
    let minutes = state.config.access_token_expire_minutes;
    let claims = claims_for(
        format!("api-key:{key_id}"),
        Role::Tenant,
        Some(tenant_id),
        chrono::Utc::now().timestamp(),
        minutes,
    );
    Ok(Json(TokenResponse {
        access_token: state.jwt.encode(&claims),
        token_type: "bearer".into(),
        expires_in: minutes * 60,
        tenant_id,
    }))
}
