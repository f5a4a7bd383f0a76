//! Processing one claimed document: its text (extracted at upload, or now from the stored file),
//! chunks, embeddings, the vector store, then `completed` or `failed` with the reason. The claim's
//! lease is renewed while this runs, and the outcome is recorded only if the claim is still ours.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Rag;
use crate::db;
use crate::models::{Document, DocumentStatus};
use crate::rag::chunk;
use crate::rag::extract::{self, FileType};
use crate::tenancy::TenantScope;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProcessDetail {
    pub document_id: Uuid,
    pub file_name: Option<String>,
    pub status: ProcessStatus,
    pub chunks: i64,
    pub error: Option<String>,
}

/// How processing a document ended: a [`DocumentStatus`] (`processing` when it is still being
/// processed elsewhere), or `not_found`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    NotFound,
}

impl From<DocumentStatus> for ProcessStatus {
    fn from(status: DocumentStatus) -> Self {
        match status {
            DocumentStatus::Pending => ProcessStatus::Pending,
            DocumentStatus::Processing => ProcessStatus::Processing,
            DocumentStatus::Completed => ProcessStatus::Completed,
            DocumentStatus::Failed => ProcessStatus::Failed,
        }
    }
}

impl ProcessDetail {
    /// Where a document stands now.
    pub fn of(doc: Document) -> Self {
        ProcessDetail {
            document_id: doc.id,
            status: doc.processed_status.into(),
            chunks: doc.chunk_count,
            error: doc.error,
            file_name: Some(doc.file_name),
        }
    }

    pub fn not_found(document_id: Uuid, why: &str) -> Self {
        ProcessDetail {
            document_id,
            file_name: None,
            status: ProcessStatus::NotFound,
            chunks: 0,
            error: Some(why.into()),
        }
    }
}

/// Extracts text from a file on disk, off the async threads, with parser panics contained.
pub async fn extract_file(kind: FileType, path: PathBuf) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path).map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "stored upload unreadable");
            "the stored file could not be read".to_string()
        })?;
        std::panic::catch_unwind(AssertUnwindSafe(|| extract::extract(kind, &bytes)))
            .unwrap_or_else(|_| Err("the file could not be parsed (the parser crashed)".into()))
    })
    .await
    .map_err(|_| "text extraction was interrupted".to_string())?
}

pub fn lease_until(rag: &Rag) -> chrono::DateTime<chrono::Utc> {
    let lease =
        chrono::Duration::from_std(rag.config.worker_lease).unwrap_or(chrono::Duration::minutes(5));
    chrono::Utc::now() + lease
}

/// Renews the lease every third of its length until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(rag: &Rag, id: Uuid, claim_id: Uuid) -> Heartbeat {
        let rag = rag.clone();
        Heartbeat(tokio::spawn(async move {
            let every = rag.config.worker_lease / 3;
            loop {
                tokio::time::sleep(every).await;
                match db::documents::extend_lease(&rag.db, id, claim_id, lease_until(&rag)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(document_id = %id, "lost the claim on a document while processing it");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(document_id = %id, error = %e, "could not renew a document lease");
                    }
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Processes a document this caller has claimed with `claim_id`.
pub async fn process_claimed(rag: &Rag, document: &Document, claim_id: Uuid) -> ProcessDetail {
    let started = Instant::now();
    let heartbeat = Heartbeat::start(rag, document.id, claim_id);
    let scope = TenantScope::trusted(document.tenant_id);
    // A settled document read by id may be cached (see `crate::cache`): it is processing now.
    crate::cache::invalidate(rag.cache.as_ref(), document.tenant_id).await;
    let outcome = run(rag, &scope, document).await;
    drop(heartbeat);
    let (status, error, chunks) = match outcome {
        Ok(chunks) => (DocumentStatus::Completed, None, chunks),
        Err(reason) => (DocumentStatus::Failed, Some(reason), 0),
    };
    match db::documents::finish(
        &rag.db,
        document.id,
        claim_id,
        status,
        error.as_deref(),
        chunks,
    )
    .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(document_id = %document.id, "claim expired before the result was recorded");
        }
        Err(e) => {
            tracing::error!(document_id = %document.id, error = %e, "could not record the processing result");
        }
    }
    // And now it is settled (or the claim was lost to another processor, which invalidates too).
    crate::cache::invalidate(rag.cache.as_ref(), document.tenant_id).await;
    rag.metrics
        .documents_processed
        .with_label_values(&[status.as_str()])
        .inc();
    rag.metrics
        .document_processing_seconds
        .with_label_values(&[document.kind.as_str()])
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(
        document_id = %document.id,
        tenant_id = %document.tenant_id,
        status = status.as_str(),
        chunks,
        error = error.as_deref(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "document processed"
    );
    ProcessDetail {
        document_id: document.id,
        file_name: Some(document.file_name.clone()),
        status: status.into(),
        chunks,
        error,
    }
}

async fn run(rag: &Rag, scope: &TenantScope, document: &Document) -> Result<i64, String> {
    let text = match db::documents::content(&rag.db, scope, document.id).await.map_err(|e| {
        tracing::error!(document_id = %document.id, error = %e, "could not load the document text");
        "the document text could not be loaded".to_string()
    })? {
        Some(text) => text,
        None => {
            // Upload was interrupted before extraction: extract from the stored file now.
            let kind = FileType::parse(&document.kind)
                .ok_or_else(|| format!("unsupported file type {}", document.kind))?;
            let path = rag.storage.path(&document.storage_key).map_err(|e| e.to_string())?;
            extract_file(kind, path).await?
        }
    };
    let (size, overlap) = (rag.config.chunk_size, rag.config.chunk_overlap);
    let pieces = tokio::task::spawn_blocking(move || chunk::chunk_text(&text, size, overlap))
        .await
        .map_err(|_| "chunking was interrupted".to_string())?;
    if pieces.is_empty() {
        return Err("the document contains no text".into());
    }
    let embed_started = Instant::now();
    let vectors = rag
        .embedder
        .embed(&pieces)
        .await
        .map_err(|e| format!("embedding failed: {e}"))?;
    rag.metrics
        .embedding_seconds
        .observe(embed_started.elapsed().as_secs_f64());
    if vectors.len() != pieces.len() {
        return Err(format!(
            "embedding returned {} vectors for {} chunks",
            vectors.len(),
            pieces.len()
        ));
    }
    let chunks: Vec<(String, Vec<f32>)> = pieces.into_iter().zip(vectors).collect();
    rag.vectors
        .replace_document(
            scope,
            document.knowledge_base_id,
            document.id,
            &document.file_name,
            &chunks,
        )
        .await
        .map_err(|e| format!("indexing failed: {e}"))?;
    Ok(chunks.len() as i64)
}
