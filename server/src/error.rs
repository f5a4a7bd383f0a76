//! One error type for the whole API. Every failure becomes a status code and a FastAPI-style
//! body: `{"detail": "message"}`, or for validation errors `{"detail": [{loc, msg, type}]}`.
//! Internal errors are logged (with the request id, through the request span) and never leak
//! their text to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// One step of a 422 `loc`: a location (`body`, `query`, `header`), a field name or map key, or
/// the index of a list item (and, for a JSON syntax error, the character offset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocItem {
    Key(String),
    Index(u64),
}

impl From<&str> for LocItem {
    fn from(key: &str) -> Self {
        LocItem::Key(key.to_string())
    }
}

impl From<String> for LocItem {
    fn from(key: String) -> Self {
        LocItem::Key(key)
    }
}

impl From<usize> for LocItem {
    fn from(index: usize) -> Self {
        LocItem::Index(index as u64)
    }
}

/// One entry of a 422 `detail` list, as FastAPI/pydantic produce it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where the problem is, e.g. `["body", "name"]`, `["body", "document_ids", 3]` or
    /// `["header", "x-tenant-id"]`.
    #[schema(min_items = 1)]
    pub loc: Vec<LocItem>,
    pub msg: String,
    /// What kind of problem, in pydantic's words (`missing`, `string_too_short`, ...).
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    pub fn new<L, I>(loc: L, msg: impl Into<String>, kind: impl Into<String>) -> Self
    where
        L: IntoIterator<Item = I>,
        I: Into<LocItem>,
    {
        Self {
            loc: loc.into_iter().map(Into::into).collect(),
            msg: msg.into(),
            kind: kind.into(),
        }
    }

    pub fn body(field: &str, msg: impl Into<String>, kind: impl Into<String>) -> Self {
        Self::new(["body", field], msg, kind)
    }
}

/// Error body with a message (documentation only; the real body is built in `IntoResponse`).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

/// 422 body (documentation only).
#[derive(Serialize, ToSchema)]
pub struct ValidationErrorBody {
    #[schema(min_items = 1)]
    pub detail: Vec<FieldError>,
}

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed,
    Conflict(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    Validation(Vec<FieldError>),
    TooManyRequests { retry_after_secs: u64 },
    ServiceUnavailable(String),
    GatewayTimeout(String),
    Timeout,
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        ApiError::Validation(errors)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ServiceUnavailable(_) | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            // The database is down or saturated: a dependency problem, not a bug.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => {
                tracing::error!(error = %err, "database unavailable");
                ApiError::ServiceUnavailable("Database unavailable".into())
            }
            _ => ApiError::Internal(err.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<sqlx::Error>() {
            Ok(sqlx_err) => sqlx_err.into(),
            Err(err) => ApiError::Internal(err),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.status(), self)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::ServiceUnavailable(m)
            | ApiError::GatewayTimeout(m) => json!({ "detail": m }),
            ApiError::MethodNotAllowed => json!({ "detail": "Method Not Allowed" }),
            ApiError::Validation(errors) => json!({ "detail": errors }),
            ApiError::TooManyRequests { .. } => json!({ "detail": "Rate limit exceeded" }),
            ApiError::Timeout => json!({ "detail": "Request timed out" }),
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                json!({ "detail": "Internal server error" })
            }
        };
        let mut response = (status, Json(body)).into_response();
        match &self {
            ApiError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}
