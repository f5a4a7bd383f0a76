use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PathId, cached_resource, check_optional_name, new_name, page_of};
use crate::api::auth::TenantAuth;
use crate::api::extract::{
    ApiJson, ListParams, Pagination, Validate, check_name, double_option, parse_id,
};
use crate::bounds;
use crate::db::{self, documents::Subtree};
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError, ValidationErrorBody};
use crate::models::{ListResponse, Teammate};
use crate::orchestration;
use crate::state::AppState;
use axum::response::Response;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_teammate, list_teammates))
        .routes(routes!(
            get_teammate,
            patch_teammate,
            put_teammate,
            delete_teammate
        ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTeammate {
    #[schema(schema_with = bounds::name)]
    pub name: String,
    /// `{strategy, assistant_ids, weights, weights_by_name, max_assistants}`, all optional;
    /// absent or `null`: none.
    #[serde(default)]
    #[schema(schema_with = orchestration::nullable_schema)]
    pub orchestration_config: Option<Value>,
}

impl Validate for CreateTeammate {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_name("name", &self.name, errors);
        if let Some(config) = &self.orchestration_config {
            orchestration::validate(config, errors);
        }
    }
}

/// Partial update: absent fields are left as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateTeammate {
    /// The new name (not `null`).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = bounds::name)]
    pub name: Option<Option<String>>,
    /// Replaces the configuration; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = orchestration::nullable_schema)]
    pub orchestration_config: Option<Option<Value>>,
}

impl Validate for UpdateTeammate {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_optional_name("name", &self.name, errors);
        if let Some(Some(config)) = &self.orchestration_config {
            orchestration::validate(config, errors);
        }
    }
}

/// Create a teammate (an AI agent) in a workspace.
#[utoipa::path(
    post, path = "/api/v1/workspaces/{workspace_id}/teammates", tag = "teammates",
    params(("workspace_id" = uuid::Uuid, Path)), request_body = CreateTeammate,
    responses((status = 201, body = Teammate), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn create_teammate(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(workspace_id): PathId,
    ApiJson(body): ApiJson<CreateTeammate>,
) -> ApiResult<(StatusCode, Json<Teammate>)> {
    let workspace_id = parse_id(&workspace_id, "Workspace")?;
    let teammate = db::teammates::create(
        &state.db,
        &auth.scope,
        workspace_id,
        body.name.trim(),
        body.orchestration_config,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("Workspace"))?;
    state.changed(&auth.scope).await;
    Ok((StatusCode::CREATED, Json(teammate)))
}

/// List a workspace's teammates.
#[utoipa::path(
    get, path = "/api/v1/workspaces/{workspace_id}/teammates", tag = "teammates",
    params(("workspace_id" = uuid::Uuid, Path), ListParams),
    responses((status = 200, body = ListResponse<Teammate>), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn list_teammates(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(workspace_id): PathId,
    Pagination(page): Pagination,
) -> ApiResult<Json<ListResponse<Teammate>>> {
    let workspace_id = parse_id(&workspace_id, "Workspace")?;
    if db::workspaces::get(&state.db, &auth.scope, workspace_id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("Workspace"));
    }
    let (items, total) = db::teammates::list(&state.db, &auth.scope, workspace_id, &page).await?;
    Ok(Json(page_of(items, total, &page)))
}

/// One teammate.
#[utoipa::path(
    get, path = "/api/v1/teammates/{teammate_id}", tag = "teammates",
    params(("teammate_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Teammate), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn get_teammate(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let id = parse_id(&id, "Teammate")?;
    let scope = &auth.scope;
    cached_resource(
        &state,
        scope,
        "Teammate",
        id,
        |_| true,
        || async { Ok(db::teammates::get(&state.db, scope, id).await?) },
    )
    .await
}

/// Update a teammate's name and/or orchestration configuration.
#[utoipa::path(
    patch, path = "/api/v1/teammates/{teammate_id}", tag = "teammates",
    params(("teammate_id" = uuid::Uuid, Path)), request_body = UpdateTeammate,
    responses((status = 200, body = Teammate), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn patch_teammate(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateTeammate>,
) -> ApiResult<Json<Teammate>> {
    let id = parse_id(&id, "Teammate")?;
    let name = new_name(&body.name);
    let teammate = if name.is_none() && body.orchestration_config.is_none() {
        db::teammates::get(&state.db, &auth.scope, id).await?
    } else {
        db::teammates::update(&state.db, &auth.scope, id, name, body.orchestration_config).await?
    };
    state.changed(&auth.scope).await;
    Ok(Json(
        teammate.ok_or_else(|| ApiError::not_found("Teammate"))?,
    ))
}

/// Update a teammate (alias of PATCH).
#[utoipa::path(
    put, path = "/api/v1/teammates/{teammate_id}", tag = "teammates",
    params(("teammate_id" = uuid::Uuid, Path)), request_body = UpdateTeammate,
    responses((status = 200, body = Teammate), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn put_teammate(
    state: State<AppState>,
    auth: TenantAuth,
    id: PathId,
    body: ApiJson<UpdateTeammate>,
) -> ApiResult<Json<Teammate>> {
    patch_teammate(state, auth, id, body).await
}

/// Delete a teammate with its assistants and their documents.
#[utoipa::path(
    delete, path = "/api/v1/teammates/{teammate_id}", tag = "teammates",
    params(("teammate_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn delete_teammate(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "Teammate")?;
    let knowledge_bases =
        db::documents::knowledge_bases_under(&state.db, &auth.scope, Subtree::Teammate(id)).await?;
    if !db::teammates::delete(&state.db, &auth.scope, id).await? {
        return Err(ApiError::not_found("Teammate"));
    }
    for kb in knowledge_bases {
        state
            .storage
            .remove_knowledge_base(auth.scope.tenant_id(), kb)
            .await;
        if let Err(e) = state
            .rag
            .vectors
            .delete_knowledge_base(&auth.scope, kb)
            .await
        {
            tracing::warn!(knowledge_base_id = %kb, error = %e, "could not delete the knowledge base's vectors");
        }
    }
    state.changed(&auth.scope).await;
    Ok(StatusCode::NO_CONTENT)
}
