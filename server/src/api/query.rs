//! Asking a teammate: route to its assistants (orchestration), retrieve, answer.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::common::PathId;
use crate::api::auth::TenantAuth;
use crate::api::extract::{ApiJson, Validate, parse_id};
use crate::bounds::{self, QUERY};
use crate::error::{ApiResult, ErrorBody, FieldError, ValidationErrorBody};
use crate::orchestration::Strategy;
use crate::rag::answer::{AssistantAnswer, Source};
use crate::rag::query::{self as service, Question};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(query_teammate))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Fast,
    Reasoning,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct QueryRequest {
    /// 1 to 10 000 characters, not all white space.
    #[schema(schema_with = bounds::query)]
    pub query: String,
    /// `fast` (default) or `reasoning`: picks the LLM model.
    #[serde(default)]
    pub mode: Mode,
}

impl Validate for QueryRequest {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        QUERY.check("query", &self.query, errors);
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResponse {
    pub teammate_id: Uuid,
    pub query: String,
    pub strategy: Strategy,
    pub selected_assistant_ids: Vec<Uuid>,
    pub responses: Vec<AssistantAnswer>,
    /// Weighted: the top answer; otherwise the answers joined by newlines.
    pub result: String,
    /// Same as `result`.
    pub answer: String,
    pub mode: Mode,
    pub model: String,
    /// The best chunks across the answering assistants (at most `MAX_RETRIEVED_CHUNKS`).
    pub sources: Vec<Source>,
    pub query_tags: Vec<String>,
    pub processing_time_ms: u64,
}

/// Ask a teammate. Its `orchestration_config` decides which assistants answer.
#[utoipa::path(
    post, path = "/api/v1/teammates/{teammate_id}/query", tag = "query",
    params(("teammate_id" = Uuid, Path)), request_body = QueryRequest,
    responses(
        (status = 200, body = QueryResponse),
        (status = 404, description = "No such teammate, or it has no assistants", body = ErrorBody),
        (status = 422, body = ValidationErrorBody),
    ),
    security(("bearer" = []))
)]
async fn query_teammate(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<QueryRequest>,
) -> ApiResult<Json<QueryResponse>> {
    let started = Instant::now();
    let teammate_id = parse_id(&id, "Teammate")?;
    let query = body.query.trim();
    let question = Question {
        teammate_id,
        query,
        reasoning: body.mode == Mode::Reasoning,
    };
    let answered = service::ask(&state.rag, &auth.scope, question).await?;
    Ok(Json(QueryResponse {
        teammate_id: answered.teammate_id,
        query_tags: answered.query_tags,
        query: query.to_string(),
        strategy: answered.strategy,
        selected_assistant_ids: answered.selected_assistant_ids,
        answer: answered.result.clone(),
        result: answered.result,
        mode: body.mode,
        model: answered.model,
        sources: answered.sources,
        responses: answered.responses,
        processing_time_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}
