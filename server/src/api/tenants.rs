use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{NameBody, PathId, RenameBody, cached_json, json_response, new_name, page_of};
use crate::api::auth::{AdminAuth, TenantAuth};
use crate::api::extract::{ApiJson, ListParams, Pagination, parse_id};
use crate::db::{self, tenants::WriteError};
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::models::{ListResponse, Tenant, TenantCreated};
use crate::state::AppState;

/// The tenant collection (admin token, outside any tenant).
pub fn admin_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_tenant, list_tenants))
}

/// One tenant (inside it).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_tenant, patch_tenant, put_tenant, delete_tenant))
}

fn duplicate(err: WriteError) -> ApiError {
    match err {
        WriteError::DuplicateName => {
            ApiError::Conflict("A tenant with this name already exists".into())
        }
        WriteError::Db(e) => e.into(),
    }
}

/// Create a tenant (admin token). The answer carries the tenant's API key, shown only this once.
#[utoipa::path(
    post, path = "/api/v1/tenants", tag = "tenants",
    request_body = NameBody,
    responses(
        (status = 201, description = "Created", body = TenantCreated),
        (status = 401, body = ErrorBody), (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody), (status = 422, body = ValidationErrorBody),
    ),
    security(("bearer" = []))
)]
async fn create_tenant(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiJson(body): ApiJson<NameBody>,
) -> ApiResult<(StatusCode, Json<TenantCreated>)> {
    let (tenant, api_key) = db::tenants::create(&state.db, body.name.trim())
        .await
        .map_err(duplicate)?;
    tracing::info!(tenant_id = %tenant.id, "tenant created");
    Ok((StatusCode::CREATED, Json(TenantCreated { tenant, api_key })))
}

/// List tenants (admin token).
#[utoipa::path(
    get, path = "/api/v1/tenants", tag = "tenants",
    params(ListParams),
    responses((status = 200, body = ListResponse<Tenant>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn list_tenants(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Pagination(page): Pagination,
) -> ApiResult<Json<ListResponse<Tenant>>> {
    let (items, total) = db::tenants::list(&state.db, &page).await?;
    Ok(Json(page_of(items, total, &page)))
}

/// The path's tenant must be the one the request is scoped to; anything else does not exist.
fn same_tenant(auth: &TenantAuth, raw: &str) -> ApiResult<()> {
    let id = parse_id(raw, "Tenant")?;
    if id != auth.scope.tenant_id() {
        return Err(ApiError::not_found("Tenant"));
    }
    Ok(())
}

/// One tenant.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Tenant), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn get_tenant(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<Response> {
    same_tenant(&auth, &id)?;
    let scope = &auth.scope;
    cached_json(
        &state,
        scope,
        &state.metrics.tenant_cache_lookups,
        "tenant",
        |_| true,
        || async { Ok(db::tenants::get(&state.db, scope).await?) },
    )
    .await?
    .map(json_response)
    .ok_or_else(|| ApiError::not_found("Tenant"))
}

/// Rename a tenant.
#[utoipa::path(
    patch, path = "/api/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = uuid::Uuid, Path)), request_body = RenameBody,
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn patch_tenant(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<RenameBody>,
) -> ApiResult<Json<Tenant>> {
    same_tenant(&auth, &id)?;
    let tenant = match new_name(&body.name) {
        Some(name) => db::tenants::rename(&state.db, &auth.scope, name)
            .await
            .map_err(duplicate)?,
        None => db::tenants::get(&state.db, &auth.scope).await?,
    };
    state.changed(&auth.scope).await;
    Ok(Json(tenant.ok_or_else(|| ApiError::not_found("Tenant"))?))
}

/// Rename a tenant (alias of PATCH).
#[utoipa::path(
    put, path = "/api/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = uuid::Uuid, Path)), request_body = RenameBody,
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn put_tenant(
    state: State<AppState>,
    auth: TenantAuth,
    id: PathId,
    body: ApiJson<RenameBody>,
) -> ApiResult<Json<Tenant>> {
    patch_tenant(state, auth, id, body).await
}

/// Delete a tenant and everything it owns (admin token; `X-Tenant-ID` is not needed).
#[utoipa::path(
    delete, path = "/api/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Not an admin token, or the header names another tenant", body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn delete_tenant(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    same_tenant(&auth, &id)?;
    if !auth.is_admin() {
        return Err(ApiError::Forbidden(
            "Deleting a tenant requires an admin token".into(),
        ));
    }
    if !db::tenants::delete(&state.db, &auth.scope).await? {
        return Err(ApiError::not_found("Tenant"));
    }
    state.storage.remove_tenant(auth.scope.tenant_id()).await;
    if let Err(e) = state.rag.vectors.delete_tenant(&auth.scope).await {
        tracing::warn!(error = %e, "could not delete the tenant's vectors");
    }
    tracing::info!(tenant_id = %auth.scope.tenant_id(), "tenant deleted");
    state.changed(&auth.scope).await;
    Ok(StatusCode::NO_CONTENT)
}
