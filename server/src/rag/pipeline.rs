//! Processing one document: claim it (`pending` → `processing`), read the stored bytes, extract
//! text (off the async threads, with panics contained), chunk, embed, store the chunks, and record
//! `completed` or `failed` with the reason.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::TenantScope;
use crate::db;
use crate::models::Document;
use crate::rag::extract::{self, FileType};
use crate::rag::{chunk, store};
use crate::state::AppState;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProcessDetail {
    pub document_id: Uuid,
    pub file_name: Option<String>,
    /// `completed`, `failed`, `skipped` (being processed elsewhere) or `not_found`.
    pub status: String,
    pub chunks: i64,
    pub error: Option<String>,
}

/// Processes one document of the scoped tenant. `retry_failed` also picks up failed documents.
pub async fn process_document(
    state: &AppState,
    scope: &TenantScope,
    document: &Document,
    retry_failed: bool,
) -> ProcessDetail {
    let mut detail = ProcessDetail {
        document_id: document.id,
        file_name: Some(document.file_name.clone()),
        status: "skipped".into(),
        chunks: 0,
        error: None,
    };
    match db::documents::claim(&state.db, scope, document.id, retry_failed).await {
        Ok(true) => {}
        Ok(false) => return detail,
        Err(e) => {
            tracing::error!(document_id = %document.id, error = %e, "could not claim document");
            detail.error = Some("database unavailable".into());
            return detail;
        }
    }
    let started = Instant::now();
    let outcome = run(state, scope, document).await;
    let (status, error, chunks) = match outcome {
        Ok(chunks) => ("completed", None, chunks),
        Err(reason) => ("failed", Some(reason), 0),
    };
    if let Err(e) = db::documents::set_status(
        &state.db,
        scope,
        document.id,
        status,
        error.as_deref(),
        chunks,
    )
    .await
    {
        tracing::error!(document_id = %document.id, error = %e, "could not record the processing result");
    }
    state
        .metrics
        .documents_processed
        .with_label_values(&[status])
        .inc();
    state
        .metrics
        .document_processing_seconds
        .with_label_values(&[document.file_type.as_str()])
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(document_id = %document.id, status, chunks, error = error.as_deref(), "document processed");
    detail.status = status.into();
    detail.chunks = chunks;
    detail.error = error;
    detail
}

async fn run(state: &AppState, scope: &TenantScope, document: &Document) -> Result<i64, String> {
    let kind = FileType::parse(&document.file_type)
        .ok_or_else(|| format!("unsupported file type {}", document.file_type))?;
    let bytes = state
        .storage
        .read(&document.storage_key)
        .await
        .map_err(|e| {
            tracing::error!(document_id = %document.id, error = %e, "stored upload unreadable");
            "the stored file could not be read".to_string()
        })?;
    // Parsers of binary formats can panic on hostile input: contain it to this document.
    let text = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(AssertUnwindSafe(|| extract::extract(kind, &bytes)))
            .unwrap_or_else(|_| Err("the file could not be parsed (parser crashed)".into()))
    })
    .await
    .map_err(|_| "text extraction was interrupted".to_string())??;
    let (size, overlap) = (state.config.chunk_size, state.config.chunk_overlap);
    let embedder = state.embedder.clone();
    let chunks = tokio::task::spawn_blocking(move || {
        let pieces = chunk::chunk_text(&text, size, overlap);
        let vectors = embedder.embed(&pieces);
        pieces.into_iter().zip(vectors).collect::<Vec<_>>()
    })
    .await
    .map_err(|_| "embedding was interrupted".to_string())?;
    if chunks.is_empty() {
        return Err("the document contains no text".into());
    }
    store::replace_document_chunks(
        &state.db,
        scope,
        document.knowledge_base_id,
        document.id,
        &chunks,
    )
    .await
    .map_err(|e| {
        tracing::error!(document_id = %document.id, error = %e, "could not store chunks");
        "the chunks could not be stored".to_string()
    })?;
    Ok(chunks.len() as i64)
}
