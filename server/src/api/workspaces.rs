use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{NameBody, PathId, RenameBody, cached_resource, new_name, page_of};
use crate::api::auth::TenantAuth;
use crate::api::extract::{ApiJson, ListParams, Pagination, parse_id};
use crate::db::{self, documents::Subtree};
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::models::{ListResponse, Workspace};
use crate::state::AppState;
use axum::response::Response;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_workspace, list_workspaces))
        .routes(routes!(
            get_workspace,
            patch_workspace,
            put_workspace,
            delete_workspace
        ))
}

/// Create a workspace in a tenant.
#[utoipa::path(
    post, path = "/api/v1/tenants/{tenant_id}/workspaces", tag = "workspaces",
    params(("tenant_id" = uuid::Uuid, Path)), request_body = NameBody,
    responses((status = 201, body = Workspace), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn create_workspace(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(tenant_id): PathId,
    ApiJson(body): ApiJson<NameBody>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    if parse_id(&tenant_id, "Tenant")? != auth.scope.tenant_id() {
        return Err(ApiError::not_found("Tenant"));
    }
    let workspace = db::workspaces::create(&state.db, &auth.scope, body.name.trim())
        .await?
        .ok_or_else(|| ApiError::not_found("Tenant"))?;
    state.changed(&auth.scope).await;
    Ok((StatusCode::CREATED, Json(workspace)))
}

/// List a tenant's workspaces.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant_id}/workspaces", tag = "workspaces",
    params(("tenant_id" = uuid::Uuid, Path), ListParams),
    responses((status = 200, body = ListResponse<Workspace>), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn list_workspaces(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(tenant_id): PathId,
    Pagination(page): Pagination,
) -> ApiResult<Json<ListResponse<Workspace>>> {
    if parse_id(&tenant_id, "Tenant")? != auth.scope.tenant_id()
        || db::tenants::get(&state.db, &auth.scope).await?.is_none()
    {
        return Err(ApiError::not_found("Tenant"));
    }
    let (items, total) = db::workspaces::list(&state.db, &auth.scope, &page).await?;
    Ok(Json(page_of(items, total, &page)))
}

/// One workspace.
#[utoipa::path(
    get, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn get_workspace(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let id = parse_id(&id, "Workspace")?;
    let scope = &auth.scope;
    cached_resource(
        &state,
        scope,
        "Workspace",
        id,
        |_| true,
        || async { Ok(db::workspaces::get(&state.db, scope, id).await?) },
    )
    .await
}

/// Rename a workspace.
#[utoipa::path(
    patch, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = uuid::Uuid, Path)), request_body = RenameBody,
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn patch_workspace(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<RenameBody>,
) -> ApiResult<Json<Workspace>> {
    let id = parse_id(&id, "Workspace")?;
    let workspace = match new_name(&body.name) {
        Some(name) => db::workspaces::rename(&state.db, &auth.scope, id, name).await?,
        None => db::workspaces::get(&state.db, &auth.scope, id).await?,
    };
    state.changed(&auth.scope).await;
    Ok(Json(
        workspace.ok_or_else(|| ApiError::not_found("Workspace"))?,
    ))
}

/// Rename a workspace (alias of PATCH).
#[utoipa::path(
    put, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = uuid::Uuid, Path)), request_body = RenameBody,
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn put_workspace(
    state: State<AppState>,
    auth: TenantAuth,
    id: PathId,
    body: ApiJson<RenameBody>,
) -> ApiResult<Json<Workspace>> {
    patch_workspace(state, auth, id, body).await
}

/// Delete a workspace with its teammates, assistants and documents.
#[utoipa::path(
    delete, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn delete_workspace(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "Workspace")?;
    let knowledge_bases =
        db::documents::knowledge_bases_under(&state.db, &auth.scope, Subtree::Workspace(id))
            .await?;
    if !db::workspaces::delete(&state.db, &auth.scope, id).await? {
        return Err(ApiError::not_found("Workspace"));
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
