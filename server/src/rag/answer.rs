//! Retrieval and answers. With no LLM configured the answer is extractive: the sentences of the
//! retrieved chunks that share the most words with the question.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Rag, RagError};
use crate::models::Assistant;
use crate::rag::embed::{STOP_WORDS, words};
use crate::rag::vector::ScoredChunk;
use crate::tenancy::TenantScope;

pub const NO_ANSWER: &str = "I could not find information about this in the knowledge base.";

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Source {
    pub document_id: Uuid,
    pub file_name: String,
    pub assistant_id: Uuid,
    pub chunk_index: i32,
    /// Similarity times the assistant's weight.
    pub score: f32,
    pub excerpt: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AssistantAnswer {
    pub assistant_id: Uuid,
    pub assistant_name: String,
    pub weight: f64,
    /// The LLM model that answered (`extractive` without an LLM).
    pub model: String,
    pub answer: String,
    pub sources: Vec<Source>,
}

/// The system prompt when the assistant has no instruction.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are a helpful assistant. Answer using only the provided context.";

/// Retrieves from one assistant's knowledge base and answers from it: with the configured LLM
/// (the assistant's instruction as system prompt, the chunks as context), or extractively.
pub async fn answer_with(
    rag: &Rag,
    scope: &TenantScope,
    assistant: &Assistant,
    weight: f64,
    query: &str,
    reasoning: bool,
    system_prompt: Option<&str>,
) -> Result<AssistantAnswer, RagError> {
    let relevant = retrieve(rag, scope, assistant, query).await?;
    let (answer, model) =
        generate(rag, assistant, query, reasoning, system_prompt, &relevant).await?;
    let sources = if answer == NO_ANSWER {
        Vec::new()
    } else {
        relevant
            .iter()
            .map(|c| Source {
                document_id: c.document_id,
                file_name: c.file_name.clone(),
                assistant_id: assistant.id,
                chunk_index: c.chunk_index,
                score: c.score * weight as f32,
                excerpt: excerpt(&c.content, 240),
            })
            .collect()
    };
    Ok(AssistantAnswer {
        assistant_id: assistant.id,
        assistant_name: assistant.name.clone(),
        weight,
        model,
        answer,
        sources,
    })
}

/// The `MAX_RETRIEVED_CHUNKS` chunks of the assistant's knowledge base closest to the query that
/// belong to existing, completed documents (an outside store may still hold vectors of a
/// document deleted or renamed since), with their current names.
async fn retrieve(
    rag: &Rag,
    scope: &TenantScope,
    assistant: &Assistant,
    query: &str,
) -> Result<Vec<ScoredChunk>, RagError> {
    let k = rag.config.max_retrieved_chunks;
    let query_vector = rag
        .embedder
        .embed(std::slice::from_ref(&query.to_string()))
        .await
        .map_err(|e| RagError::provider("embeddings", e))?
        .pop()
        .ok_or(RagError::NothingEmbedded)?;
    let chunks = rag
        .vectors
        .search(scope, assistant.knowledge_base_id, &query_vector, k)
        .await
        .map_err(|e| RagError::provider("vector store", e))?;
    let ids: Vec<Uuid> = chunks.iter().map(|c| c.document_id).collect();
    let names = crate::db::documents::completed_names(&rag.db, scope, &ids).await?;
    Ok(chunks
        .into_iter()
        .filter(|c| c.score > 0.0)
        .filter_map(|mut c| {
            c.file_name = names.get(&c.document_id)?.clone();
            Some(c)
        })
        .collect())
}

/// The answer and the model that gave it: the LLM's (timed), [`NO_ANSWER`] when nothing relevant
/// was found, or the extractive answer without an LLM.
async fn generate(
    rag: &Rag,
    assistant: &Assistant,
    query: &str,
    reasoning: bool,
    system_prompt: Option<&str>,
    relevant: &[ScoredChunk],
) -> Result<(String, String), RagError> {
    let Some(llm) = &rag.llm else {
        return Ok((
            extractive_answer(query, relevant),
            EXTRACTIVE_MODEL.to_string(),
        ));
    };
    let model = assistant
        .model
        .clone()
        .unwrap_or_else(|| llm.default_model(reasoning));
    if relevant.is_empty() {
        return Ok((NO_ANSWER.to_string(), model));
    }
    let system = system_prompt.unwrap_or(DEFAULT_SYSTEM_PROMPT);
    let prompt = build_prompt(query, relevant);
    let started = std::time::Instant::now();
    let result = llm.generate(&model, system, &prompt).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    rag.metrics
        .llm_seconds
        .with_label_values(&[outcome])
        .observe(started.elapsed().as_secs_f64());
    let answer = result.map_err(|e| RagError::provider("LLM", e))?;
    Ok((answer.trim().to_string(), model))
}

/// The model name reported for extractive answers.
pub const EXTRACTIVE_MODEL: &str = "extractive";

/// The user prompt: numbered context chunks, then the question.
pub fn build_prompt(query: &str, chunks: &[ScoredChunk]) -> String {
    let mut prompt = String::from(
        "Answer the question using only the context below. If the context does not contain the answer, \
         say that you do not know.\n\nContext:\n",
    );
    for (i, c) in chunks.iter().enumerate() {
        prompt.push_str(&format!(
            "[{}] ({}) {}\n",
            i + 1,
            c.file_name,
            c.content.trim()
        ));
    }
    prompt.push_str(&format!("\nQuestion: {query}\n"));
    prompt
}

fn keywords(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words(text) {
        if !STOP_WORDS.contains(&w.as_str()) && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// Up to five distinctive words of the question.
pub fn query_tags(query: &str) -> Vec<String> {
    let mut tags = keywords(query);
    tags.retain(|w| w.chars().count() > 2);
    tags.truncate(5);
    tags
}

fn word_matches(keyword: &str, word: &str) -> bool {
    if keyword == word {
        return true;
    }
    // A shared stem of five or more characters ("invoice"/"invoices", "processing"/"processed").
    let stem = |s: &str| s.chars().take(5).collect::<String>();
    keyword.chars().count() >= 5 && word.chars().count() >= 5 && stem(keyword) == stem(word)
}

/// The (at most three) sentences of the chunks that share the most words with the question, in
/// retrieval order; [`NO_ANSWER`] when nothing matches.
pub fn extractive_answer(query: &str, chunks: &[ScoredChunk]) -> String {
    let keys = keywords(query);
    if keys.is_empty() {
        return NO_ANSWER.into();
    }
    let mut candidates: Vec<(usize, usize, String)> = Vec::new(); // (matches, order, sentence)
    let mut order = 0;
    for chunk in chunks {
        for sentence in sentences(&chunk.content) {
            let sentence_words: Vec<String> = words(&sentence).collect();
            let matches = keys
                .iter()
                .filter(|k| sentence_words.iter().any(|w| word_matches(k, w)))
                .count();
            if matches > 0 && !candidates.iter().any(|(_, _, s)| *s == sentence) {
                candidates.push((matches, order, sentence));
            }
            order += 1;
        }
    }
    if candidates.is_empty() {
        return NO_ANSWER.into();
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let best = candidates[0].0;
    let mut chosen: Vec<(usize, String)> = candidates
        .into_iter()
        .filter(|(m, _, _)| *m * 2 >= best)
        .take(3)
        .map(|(_, o, s)| (o, s))
        .collect();
    chosen.sort_by_key(|(o, _)| *o);
    chosen
        .into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ")
}

fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '\n' {
            push_sentence(&mut out, &mut current);
            continue;
        }
        current.push(*c);
        let at_end = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if matches!(c, '.' | '!' | '?' | '。') && at_end {
            push_sentence(&mut out, &mut current);
        }
    }
    push_sentence(&mut out, &mut current);
    out
}

fn push_sentence(out: &mut Vec<String>, current: &mut String) {
    let s = current.split_whitespace().collect::<Vec<_>>().join(" ");
    if !s.is_empty() {
        out.push(s);
    }
    current.clear();
}

fn excerpt(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        let cut: String = flat.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> ScoredChunk {
        ScoredChunk {
            document_id: Uuid::nil(),
            file_name: "f".into(),
            chunk_index: 0,
            content: text.into(),
            score: 0.5,
        }
    }

    #[test]
    fn picks_the_matching_sentences() {
        let chunks = [chunk(
            "Our office is in Lyon. The invoice deadline is 45 days after delivery. Penguins are birds.",
        )];
        assert_eq!(
            extractive_answer("What is the invoice deadline?", &chunks),
            "The invoice deadline is 45 days after delivery."
        );
        assert_eq!(
            extractive_answer("Who won the 1998 cup?", &chunks),
            NO_ANSWER
        );
        assert_eq!(extractive_answer("the", &chunks), NO_ANSWER);
    }

    #[test]
    fn tags_are_distinct_keywords() {
        assert_eq!(
            query_tags("What is the invoice deadline for the invoice?"),
            ["invoice", "deadline"]
        );
    }
}
