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
use crate::db;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError, ValidationErrorBody};
use crate::extract::{ApiJson, Validate, parse_id};
use crate::orchestration::{self, Strategy};
use crate::rag::answer::{AssistantAnswer, Source, answer_with, query_tags};
use crate::state::AppState;
use crate::tenancy::TenantScope;

pub const MAX_QUERY_CHARS: usize = 10_000;

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
    #[schema(example = "What is the invoice deadline?")]
    pub query: String,
    /// `fast` (default) or `reasoning`: picks the LLM model.
    #[serde(default)]
    pub mode: Mode,
}

impl Validate for QueryRequest {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.query.trim().is_empty() {
            errors.push(FieldError::body(
                "query",
                "String should have at least 1 character",
                "string_too_short",
            ));
        } else if self.query.chars().count() > MAX_QUERY_CHARS {
            errors.push(FieldError::body(
                "query",
                format!("String should have at most {MAX_QUERY_CHARS} characters"),
                "string_too_long",
            ));
        }
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
    security(("bearer" = [], "tenant" = []))
)]
async fn query_teammate(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<QueryRequest>,
) -> ApiResult<Json<QueryResponse>> {
    let started = Instant::now();
    let id = parse_id(&id, "Teammate")?;
    let TeammateBundle {
        teammate,
        assistants,
        prompts,
    } = load_teammate(&state, &auth.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Teammate"))?;
    let plan = orchestration::parse(teammate.orchestration_config.as_ref().map(|j| &j.0));
    let selected = plan.select(&assistants);
    if selected.is_empty() {
        return Err(ApiError::NotFound(
            "Teammate has no assistants to answer".into(),
        ));
    }
    let query = body.query.trim().to_string();
    let reasoning = body.mode == Mode::Reasoning;
    let responses: Vec<AssistantAnswer> = match plan.strategy {
        Strategy::Parallel => {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, (assistant, weight)) in selected.iter().enumerate() {
                let (state, scope, assistant, weight, query) = (
                    state.clone(),
                    auth.scope,
                    (*assistant).clone(),
                    *weight,
                    query.clone(),
                );
                let prompt = prompts.get(&assistant.id).cloned();
                tasks.spawn(async move {
                    (
                        index,
                        answer_with(
                            &state,
                            &scope,
                            &assistant,
                            weight,
                            &query,
                            reasoning,
                            prompt.as_deref(),
                        )
                        .await,
                    )
                });
            }
            let mut results = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                let (index, answer) = joined.map_err(ApiError::internal)?;
                results.push((index, answer?));
            }
            results.sort_by_key(|(i, _)| *i);
            results.into_iter().map(|(_, a)| a).collect()
        }
        Strategy::Weighted | Strategy::Sequential => {
            let mut results = Vec::new();
            for (assistant, weight) in &selected {
                let prompt = prompts.get(&assistant.id).map(String::as_str);
                results.push(
                    answer_with(
                        &state,
                        &auth.scope,
                        assistant,
                        *weight,
                        &query,
                        reasoning,
                        prompt,
                    )
                    .await?,
                );
            }
            results
        }
    };
    let result = match plan.strategy {
        Strategy::Weighted => responses[0].answer.clone(),
        _ => responses
            .iter()
            .map(|r| r.answer.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let mut sources: Vec<Source> = responses
        .iter()
        .flat_map(|r| r.sources.iter().cloned())
        .collect();
    sources.sort_by(|a, b| b.score.total_cmp(&a.score));
    sources.truncate(state.config.max_retrieved_chunks);
    Ok(Json(QueryResponse {
        teammate_id: teammate.id,
        query_tags: query_tags(&query),
        query,
        strategy: plan.strategy,
        selected_assistant_ids: selected.iter().map(|(a, _)| a.id).collect(),
        answer: result.clone(),
        result,
        mode: body.mode,
        model: responses[0].model.clone(),
        sources,
        responses,
        processing_time_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

/// What a query needs about a teammate, cached (see `crate::cache`).
#[derive(serde::Serialize, serde::Deserialize)]
struct TeammateBundle {
    teammate: crate::models::Teammate,
    assistants: Vec<crate::models::Assistant>,
    prompts: std::collections::HashMap<Uuid, String>,
}

async fn load_teammate(
    state: &AppState,
    scope: &TenantScope,
    id: Uuid,
) -> ApiResult<Option<TeammateBundle>> {
    let cache = state.cache.as_ref();
    let lookups = &state.metrics.cache_lookups;
    let key = match crate::cache::generation(cache, scope.tenant_id()).await {
        Ok(generation) => Some(crate::cache::key(
            scope.tenant_id(),
            generation,
            &format!("teammate:{id}"),
        )),
        Err(e) => {
            lookups.with_label_values(&["error"]).inc();
            tracing::warn!(error = %e, "cache unavailable: reading the database");
            None
        }
    };
    if let Some(key) = &key {
        match cache.get(key).await {
            Ok(Some(json)) => {
                if let Ok(bundle) = serde_json::from_str::<TeammateBundle>(&json) {
                    lookups.with_label_values(&["hit"]).inc();
                    return Ok(Some(bundle));
                }
                lookups.with_label_values(&["error"]).inc();
            }
            Ok(None) => lookups.with_label_values(&["miss"]).inc(),
            Err(e) => {
                lookups.with_label_values(&["error"]).inc();
                tracing::warn!(error = %e, "cache unavailable: reading the database");
            }
        }
    }
    let Some(teammate) = db::teammates::get(&state.db, scope, id).await? else {
        return Ok(None);
    };
    let assistants = db::assistants::all_for_teammate(&state.db, scope, id).await?;
    let prompts = db::instructions::for_teammate(&state.db, scope, id)
        .await?
        .into_iter()
        .collect();
    let bundle = TeammateBundle {
        teammate,
        assistants,
        prompts,
    };
    if let Some(key) = key
        && let Ok(json) = serde_json::to_string(&bundle)
        && let Err(e) = cache.set(&key, json, crate::cache::TTL).await
    {
        tracing::warn!(error = %e, "could not fill the cache");
    }
    Ok(Some(bundle))
}
