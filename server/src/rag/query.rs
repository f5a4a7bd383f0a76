//! Asking a teammate: its metadata (through the cache), the routing between its assistants
//! (orchestration), each selected assistant's answer, and the combined result.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::answer::{AssistantAnswer, Source, answer_with, query_tags};
use super::{Rag, RagError};
use crate::cache::{self, Cached};
use crate::db;
use crate::models::{Assistant, Teammate};
use crate::orchestration::{self, Strategy};
use crate::tenancy::TenantScope;

/// What a query asks.
pub struct Question<'a> {
    pub teammate_id: Uuid,
    /// Trimmed, not empty.
    pub query: &'a str,
    /// Use the reasoning model rather than the fast one.
    pub reasoning: bool,
}

/// The combined answer of a teammate.
pub struct Answered {
    pub teammate_id: Uuid,
    pub strategy: Strategy,
    pub selected_assistant_ids: Vec<Uuid>,
    /// One per selected assistant, in the order they were selected.
    pub responses: Vec<AssistantAnswer>,
    /// Weighted: the top answer; otherwise the answers joined by newlines.
    pub result: String,
    /// The model of the first answer.
    pub model: String,
    /// The best chunks across the answering assistants (at most `MAX_RETRIEVED_CHUNKS`).
    pub sources: Vec<Source>,
    pub query_tags: Vec<String>,
}

/// Routes the question to the teammate's assistants and combines their answers.
pub async fn ask(
    rag: &Rag,
    scope: &TenantScope,
    question: Question<'_>,
) -> Result<Answered, RagError> {
    let TeammateBundle {
        teammate,
        assistants,
        prompts,
    } = load_teammate(rag, scope, question.teammate_id)
        .await?
        .ok_or(RagError::NotFound("Teammate"))?;
    let plan = orchestration::parse(teammate.orchestration_config.as_ref().map(|j| &j.0));
    let selected = plan.select(&assistants);
    if selected.is_empty() {
        return Err(RagError::NoAssistants);
    }
    let asks: Vec<Ask> = selected
        .iter()
        .map(|(assistant, weight)| Ask {
            assistant: (*assistant).clone(),
            weight: *weight,
            prompt: prompts.get(&assistant.id).cloned(),
        })
        .collect();
    let responses = match plan.strategy {
        Strategy::Parallel => fan_out(rag, scope, asks, &question).await?,
        Strategy::Weighted | Strategy::Sequential => {
            let mut results = Vec::new();
            for ask in &asks {
                results.push(ask.answer(rag, scope, &question).await?);
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
    sources.truncate(rag.config.max_retrieved_chunks);
    Ok(Answered {
        teammate_id: teammate.id,
        strategy: plan.strategy,
        selected_assistant_ids: selected.iter().map(|(a, _)| a.id).collect(),
        model: responses[0].model.clone(),
        result,
        sources,
        responses,
        query_tags: query_tags(question.query),
    })
}

/// One selected assistant, with its weight and system prompt.
struct Ask {
    assistant: Assistant,
    weight: f64,
    prompt: Option<String>,
}

impl Ask {
    async fn answer(
        &self,
        rag: &Rag,
        scope: &TenantScope,
        question: &Question<'_>,
    ) -> Result<AssistantAnswer, RagError> {
        answer_with(
            rag,
            scope,
            &self.assistant,
            self.weight,
            question.query,
            question.reasoning,
            self.prompt.as_deref(),
        )
        .await
    }
}

/// Every assistant at once; the answers in the order of `asks`.
async fn fan_out(
    rag: &Rag,
    scope: &TenantScope,
    asks: Vec<Ask>,
    question: &Question<'_>,
) -> Result<Vec<AssistantAnswer>, RagError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, ask) in asks.into_iter().enumerate() {
        let (rag, scope, query, reasoning) = (
            rag.clone(),
            *scope,
            question.query.to_string(),
            question.reasoning,
        );
        let teammate_id = question.teammate_id;
        tasks.spawn(async move {
            let question = Question {
                teammate_id,
                query: &query,
                reasoning,
            };
            (index, ask.answer(&rag, &scope, &question).await)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, answer) = joined.map_err(|e| RagError::Internal(e.into()))?;
        results.push((index, answer?));
    }
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, a)| a).collect())
}

/// What a query needs about a teammate, cached (see `crate::cache`).
#[derive(Serialize, Deserialize)]
struct TeammateBundle {
    teammate: Teammate,
    assistants: Vec<Assistant>,
    prompts: HashMap<Uuid, String>,
}

impl Cached for TeammateBundle {
    fn encode(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }
    fn decode(text: String) -> Option<Self> {
        serde_json::from_str(&text).ok()
    }
}

async fn load_teammate(
    rag: &Rag,
    scope: &TenantScope,
    id: Uuid,
) -> Result<Option<TeammateBundle>, RagError> {
    let what = format!("teammate:{id}");
    cache::get_or_load(
        rag.cache.as_ref(),
        &rag.metrics.cache_lookups,
        scope.tenant_id(),
        &what,
        || async {
            let Some(teammate) = db::teammates::get(&rag.db, scope, id).await? else {
                return Ok(None);
            };
            let assistants = db::assistants::all_for_teammate(&rag.db, scope, id).await?;
            let prompts = db::instructions::for_teammate(&rag.db, scope, id)
                .await?
                .into_iter()
                .collect();
            Ok(Some(TeammateBundle {
                teammate,
                assistants,
                prompts,
            }))
        },
    )
    .await
}
