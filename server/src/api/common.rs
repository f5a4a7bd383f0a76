//! Small pieces shared by the resource modules.

use std::future::Future;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::extract::{Validate, check_name, double_option};
use crate::bounds;
use crate::cache::{self, CachedJson};
use crate::db::Page;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::models::ListResponse;
use crate::provider::ProviderError;
use crate::rag::RagError;
use crate::state::AppState;
use crate::tenancy::TenantScope;

/// The single `{..._id}` path parameter, still as text: handlers parse it with
/// [`crate::api::extract::parse_id`], so a non-UUID id is a plain 404.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("Not Found".into()))?;
        Ok(PathId(id))
    }
}

/// A resource read by id through the metadata cache (see `crate::cache`): its JSON, as cached,
/// or `load`'s, kept when `keep` says so; `None` when it does not exist. `what` names it within
/// the tenant (`workspace:<id>`); `lookups` counts the outcome.
pub async fn cached_json<T, Fut>(
    state: &AppState,
    scope: &TenantScope,
    lookups: &prometheus::IntCounterVec,
    what: &str,
    keep: impl FnOnce(&T) -> bool,
    load: impl FnOnce() -> Fut,
) -> ApiResult<Option<String>>
where
    T: Serialize,
    Fut: Future<Output = ApiResult<Option<T>>>,
{
    let found = cache::get_or_load(
        state.cache.as_ref(),
        lookups,
        scope.tenant_id(),
        what,
        || async {
            let Some(value) = load().await? else {
                return ApiResult::Ok(None);
            };
            Ok(Some(CachedJson {
                text: serde_json::to_string(&value).map_err(ApiError::internal)?,
                keep: keep(&value),
            }))
        },
    )
    .await?;
    Ok(found.map(|json| json.text))
}

/// A 200 with a JSON body that is already text.
pub fn json_response(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

/// A workspace, teammate, assistant or document read by id, through the cache.
pub async fn cached_resource<T, Fut>(
    state: &AppState,
    scope: &TenantScope,
    kind: &'static str,
    id: uuid::Uuid,
    keep: impl FnOnce(&T) -> bool,
    load: impl FnOnce() -> Fut,
) -> ApiResult<Response>
where
    T: Serialize,
    Fut: Future<Output = ApiResult<Option<T>>>,
{
    let what = format!("{}:{id}", kind.to_ascii_lowercase());
    cached_json(
        state,
        scope,
        &state.metrics.resource_cache_lookups,
        &what,
        keep,
        load,
    )
    .await?
    .map(json_response)
    .ok_or_else(|| ApiError::not_found(kind))
}

pub fn page_of<T: ToSchema>(items: Vec<T>, total: i64, page: &Page) -> ListResponse<T> {
    ListResponse {
        items,
        total,
        limit: page.limit,
        offset: page.offset,
    }
}

/// `{"name": "..."}`: creating a tenant or a workspace.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NameBody {
    /// 1 to 255 characters, not all white space (surrounding white space is removed).
    #[schema(schema_with = bounds::name)]
    pub name: String,
}

impl Validate for NameBody {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_name("name", &self.name, errors);
    }
}

/// Partial update of a name (PATCH, or PUT as its alias): an absent name is left as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RenameBody {
    /// The new name (not `null`).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = bounds::name)]
    pub name: Option<Option<String>>,
}

impl Validate for RenameBody {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_optional_name("name", &self.name, errors);
    }
}

/// A PATCH field that may be absent but, when present, must be a valid name (not null).
pub fn check_optional_name(
    field: &str,
    value: &Option<Option<String>>,
    errors: &mut Vec<FieldError>,
) {
    match value {
        None => {}
        Some(None) => errors.push(FieldError::body(
            field,
            "Input should be a valid string",
            "string_type",
        )),
        Some(Some(name)) => check_name(field, name, errors),
    }
}

/// The new name, trimmed, if one was given.
pub fn new_name(value: &Option<Option<String>>) -> Option<&str> {
    value.as_ref().and_then(|v| v.as_deref()).map(str::trim)
}

/// A pipeline failure as the API reports it: a provider that timed out is a 504, one that is
/// unavailable a 503.
impl From<RagError> for ApiError {
    fn from(e: RagError) -> Self {
        match e {
            RagError::NotFound(what) => ApiError::not_found(what),
            RagError::NoAssistants => {
                ApiError::NotFound("Teammate has no assistants to answer".into())
            }
            RagError::Provider {
                what,
                error: ProviderError::Timeout(_),
            } => ApiError::GatewayTimeout(format!("The {what} provider timed out")),
            RagError::Provider {
                what,
                error: ProviderError::Unavailable(_),
            } => ApiError::ServiceUnavailable(format!("The {what} provider is unavailable")),
            RagError::NothingEmbedded => {
                ApiError::ServiceUnavailable("The embedding provider returned nothing".into())
            }
            RagError::Db(e) => e.into(),
            RagError::Internal(e) => ApiError::Internal(e),
        }
    }
}
