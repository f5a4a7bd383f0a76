use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PathId, cached_resource, check_optional_name, new_name, page_of};
use crate::api::auth::TenantAuth;
use crate::api::extract::{
    ApiJson, ListParams, Pagination, Validate, check_name, double_option, parse_id,
};
use crate::bounds::{self, MODEL, SYSTEM_PROMPT};
use crate::db;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError, ValidationErrorBody};
use crate::models::{Assistant, Instruction, ListResponse};
use crate::state::AppState;
use axum::response::Response;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_assistant, list_assistants))
        .routes(routes!(
            get_assistant,
            patch_assistant,
            put_assistant,
            delete_assistant
        ))
        .routes(routes!(
            upsert_instruction,
            get_instruction,
            put_instruction,
            patch_instruction,
            delete_instruction
        ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateAssistant {
    #[schema(schema_with = bounds::name)]
    pub name: String,
    /// LLM model name; the server's default model when absent or `null`.
    #[serde(default)]
    #[schema(schema_with = bounds::nullable_model)]
    pub model: Option<String>,
}

impl Validate for CreateAssistant {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_name("name", &self.name, errors);
        if let Some(model) = &self.model {
            MODEL.check("model", model, errors);
        }
    }
}

/// Partial update: absent fields are left as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateAssistant {
    /// The new name (not `null`).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = bounds::name)]
    pub name: Option<Option<String>>,
    /// `null` resets to the server default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = bounds::nullable_model)]
    pub model: Option<Option<String>>,
}

impl Validate for UpdateAssistant {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_optional_name("name", &self.name, errors);
        if let Some(Some(model)) = &self.model {
            MODEL.check("model", model, errors);
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InstructionBody {
    /// 1 to 100 000 characters, not all white space.
    #[schema(schema_with = bounds::system_prompt)]
    pub system_prompt: String,
}

impl Validate for InstructionBody {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        SYSTEM_PROMPT.check("system_prompt", &self.system_prompt, errors);
    }
}

/// Create an assistant (an LLM configuration with its own knowledge base) under a teammate.
#[utoipa::path(
    post, path = "/api/v1/teammates/{teammate_id}/assistants", tag = "assistants",
    params(("teammate_id" = uuid::Uuid, Path)), request_body = CreateAssistant,
    responses((status = 201, body = Assistant), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn create_assistant(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(teammate_id): PathId,
    ApiJson(body): ApiJson<CreateAssistant>,
) -> ApiResult<(StatusCode, Json<Assistant>)> {
    let teammate_id = parse_id(&teammate_id, "Teammate")?;
    let assistant = db::assistants::create(
        &state.db,
        &auth.scope,
        teammate_id,
        body.name.trim(),
        body.model.as_deref().map(str::trim),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("Teammate"))?;
    state.changed(&auth.scope).await;
    Ok((StatusCode::CREATED, Json(assistant)))
}

/// List a teammate's assistants (oldest first).
#[utoipa::path(
    get, path = "/api/v1/teammates/{teammate_id}/assistants", tag = "assistants",
    params(("teammate_id" = uuid::Uuid, Path), ListParams),
    responses((status = 200, body = ListResponse<Assistant>), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn list_assistants(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(teammate_id): PathId,
    Pagination(page): Pagination,
) -> ApiResult<Json<ListResponse<Assistant>>> {
    let teammate_id = parse_id(&teammate_id, "Teammate")?;
    if db::teammates::get(&state.db, &auth.scope, teammate_id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("Teammate"));
    }
    let (items, total) = db::assistants::list(&state.db, &auth.scope, teammate_id, &page).await?;
    Ok(Json(page_of(items, total, &page)))
}

/// One assistant.
#[utoipa::path(
    get, path = "/api/v1/assistants/{assistant_id}", tag = "assistants",
    params(("assistant_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Assistant), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn get_assistant(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let id = parse_id(&id, "Assistant")?;
    let scope = &auth.scope;
    cached_resource(
        &state,
        scope,
        "Assistant",
        id,
        |_| true,
        || async { Ok(db::assistants::get(&state.db, scope, id).await?) },
    )
    .await
}

/// Update an assistant's name and/or model.
#[utoipa::path(
    patch, path = "/api/v1/assistants/{assistant_id}", tag = "assistants",
    params(("assistant_id" = uuid::Uuid, Path)), request_body = UpdateAssistant,
    responses((status = 200, body = Assistant), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn patch_assistant(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateAssistant>,
) -> ApiResult<Json<Assistant>> {
    let id = parse_id(&id, "Assistant")?;
    let name = new_name(&body.name);
    let model = body.model.as_ref().map(|m| m.as_deref().map(str::trim));
    let assistant = if name.is_none() && model.is_none() {
        db::assistants::get(&state.db, &auth.scope, id).await?
    } else {
        db::assistants::update(&state.db, &auth.scope, id, name, model).await?
    };
    state.changed(&auth.scope).await;
    Ok(Json(
        assistant.ok_or_else(|| ApiError::not_found("Assistant"))?,
    ))
}

/// Update an assistant (alias of PATCH).
#[utoipa::path(
    put, path = "/api/v1/assistants/{assistant_id}", tag = "assistants",
    params(("assistant_id" = uuid::Uuid, Path)), request_body = UpdateAssistant,
    responses((status = 200, body = Assistant), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn put_assistant(
    state: State<AppState>,
    auth: TenantAuth,
    id: PathId,
    body: ApiJson<UpdateAssistant>,
) -> ApiResult<Json<Assistant>> {
    patch_assistant(state, auth, id, body).await
}

/// Delete an assistant with its instruction, knowledge base and documents.
#[utoipa::path(
    delete, path = "/api/v1/assistants/{assistant_id}", tag = "assistants",
    params(("assistant_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn delete_assistant(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "Assistant")?;
    let assistant = db::assistants::get(&state.db, &auth.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Assistant"))?;
    if !db::assistants::delete(&state.db, &auth.scope, id).await? {
        return Err(ApiError::not_found("Assistant"));
    }
    state
        .storage
        .remove_knowledge_base(auth.scope.tenant_id(), assistant.knowledge_base_id)
        .await;
    if let Err(e) = state
        .rag
        .vectors
        .delete_knowledge_base(&auth.scope, assistant.knowledge_base_id)
        .await
    {
        tracing::warn!(assistant_id = %id, error = %e, "could not delete the knowledge base's vectors");
    }
    state.changed(&auth.scope).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn upsert(
    state: &AppState,
    auth: &TenantAuth,
    id: &str,
    body: &InstructionBody,
) -> ApiResult<Instruction> {
    let id = parse_id(id, "Assistant")?;
    let instruction = db::instructions::upsert(&state.db, &auth.scope, id, &body.system_prompt)
        .await?
        .ok_or_else(|| ApiError::not_found("Assistant"))?;
    state.changed(&auth.scope).await;
    Ok(instruction)
}

/// Set the assistant's system prompt (creates or replaces it).
#[utoipa::path(
    post, path = "/api/v1/assistants/{assistant_id}/instruction", tag = "assistants",
    params(("assistant_id" = uuid::Uuid, Path)), request_body = InstructionBody,
    responses((status = 201, body = Instruction), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn upsert_instruction(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<InstructionBody>,
) -> ApiResult<(StatusCode, Json<Instruction>)> {
    Ok((
        StatusCode::CREATED,
        Json(upsert(&state, &auth, &id, &body).await?),
    ))
}

/// Replace the assistant's system prompt (PUT; answers 200).
#[utoipa::path(
    put, path = "/api/v1/assistants/{assistant_id}/instruction", tag = "assistants",
    params(("assistant_id" = uuid::Uuid, Path)), request_body = InstructionBody,
    responses((status = 200, body = Instruction), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn put_instruction(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<InstructionBody>,
) -> ApiResult<Json<Instruction>> {
    Ok(Json(upsert(&state, &auth, &id, &body).await?))
}

/// Replace the assistant's system prompt (PATCH; the instruction has a single field).
#[utoipa::path(
    patch, path = "/api/v1/assistants/{assistant_id}/instruction", tag = "assistants",
    params(("assistant_id" = uuid::Uuid, Path)), request_body = InstructionBody,
    responses((status = 200, body = Instruction), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
)]
async fn patch_instruction(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<InstructionBody>,
) -> ApiResult<Json<Instruction>> {
    Ok(Json(upsert(&state, &auth, &id, &body).await?))
}

/// The assistant's system prompt.
#[utoipa::path(
    get, path = "/api/v1/assistants/{assistant_id}/instruction", tag = "assistants",
    params(("assistant_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Instruction), (status = 404, description = "No such assistant, or no instruction yet", body = ErrorBody)),
    security(("bearer" = []))
)]
async fn get_instruction(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<Json<Instruction>> {
    let id = parse_id(&id, "Assistant")?;
    match db::instructions::get(&state.db, &auth.scope, id).await? {
        Some(instruction) => Ok(Json(instruction)),
        None if db::assistants::get(&state.db, &auth.scope, id)
            .await?
            .is_none() =>
        {
            Err(ApiError::not_found("Assistant"))
        }
        None => Err(ApiError::not_found("Instruction")),
    }
}

/// Remove the assistant's system prompt.
#[utoipa::path(
    delete, path = "/api/v1/assistants/{assistant_id}/instruction", tag = "assistants",
    params(("assistant_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn delete_instruction(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "Assistant")?;
    if !db::instructions::delete(&state.db, &auth.scope, id).await? {
        return Err(ApiError::not_found("Instruction"));
    }
    state.changed(&auth.scope).await;
    Ok(StatusCode::NO_CONTENT)
}
