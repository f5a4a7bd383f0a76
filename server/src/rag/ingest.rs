//! Documents into a knowledge base: storing an upload (store, extract, queue) and processing a
//! batch of them on request.

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use super::extract::FileType;
use super::pipeline::{ProcessDetail, extract_file, lease_until, process_claimed};
use super::worker::wait_until_settled;
use super::{Rag, RagError};
use crate::db::{self, documents::NewDocument};
use crate::models::{Document, DocumentStatus};
use crate::storage::Storage;
use crate::tenancy::TenantScope;

/// How long a batch waits for a document someone else is processing.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A received file, written to a temporary path of the knowledge base's directory.
pub struct Upload {
    pub temp: PathBuf,
    /// The client's file name, already reduced to a display name.
    pub file_name: String,
    pub content_type: Option<String>,
    pub kind: FileType,
    /// Bytes, more than 0.
    pub size: u64,
}

/// Moves the upload to its generated name, records the document (`pending`) and extracts its
/// text now, so processing never needs this replica's disk: the document stays `pending` and the
/// worker is woken, or, when the parser fails, it becomes `failed`.
pub async fn add_document(
    rag: &Rag,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
    upload: Upload,
) -> Result<Document, RagError> {
    let Upload {
        temp,
        file_name,
        content_type,
        kind,
        size,
    } = upload;
    let document_id = db::new_id();
    let key = Storage::key(scope.tenant_id(), knowledge_base_id, document_id);
    let final_path = rag
        .storage
        .path(&key)
        .map_err(|e| RagError::Internal(e.into()))?;
    tokio::fs::rename(&temp, &final_path)
        .await
        .map_err(|e| RagError::Internal(e.into()))?;
    let created = db::documents::create(
        &rag.db,
        scope,
        NewDocument {
            id: document_id,
            knowledge_base_id,
            file_name: &file_name,
            kind: kind.as_str(),
            content_type: content_type.as_deref().unwrap_or(kind.mime()),
            size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
            storage_key: &key,
        },
    )
    .await;
    let document = match created {
        Ok(Some(document)) => document,
        Ok(None) => {
            rag.storage.remove(&key).await;
            return Err(RagError::NotFound("Assistant"));
        }
        Err(e) => {
            rag.storage.remove(&key).await;
            return Err(e.into());
        }
    };
    let extracted = extract_file(kind, final_path).await;
    db::documents::set_extraction(
        &rag.db,
        scope,
        document.id,
        extracted.as_deref().map_err(String::as_str),
    )
    .await?;
    match &extracted {
        Ok(text) => {
            tracing::info!(document_id = %document.id, size, chars = text.chars().count(), file_type = kind.as_str(), "document uploaded and queued");
            rag.queue.notify_one();
        }
        Err(reason) => {
            tracing::info!(document_id = %document.id, size, file_type = kind.as_str(), %reason, "document uploaded; extraction failed");
        }
    }
    Ok(db::documents::get(&rag.db, scope, document.id)
        .await?
        .unwrap_or(document))
}

/// Processes documents of a knowledge base now: every pending one (`ids` is `None`), or exactly
/// the named ones (then failed and completed ones are processed again; unknown ones are reported
/// `not_found`). A document someone else is processing is waited for. The details are in the
/// order asked for.
pub async fn process_batch(
    rag: &Rag,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
    ids: Option<&[Uuid]>,
) -> Result<Vec<ProcessDetail>, RagError> {
    let all = db::documents::all_in_knowledge_base(&rag.db, scope, knowledge_base_id).await?;
    let mut details = Vec::new();
    let (targets, reprocess): (Vec<Uuid>, bool) = match ids {
        None => (
            all.iter()
                .filter(|d| d.processed_status == DocumentStatus::Pending)
                .map(|d| d.id)
                .collect(),
            false,
        ),
        Some(ids) => {
            let mut unique = Vec::new();
            for id in ids {
                if unique.contains(id) {
                    continue;
                }
                unique.push(*id);
                if !all.iter().any(|d| d.id == *id) {
                    details.push(ProcessDetail::not_found(
                        *id,
                        "Document not found in this knowledge base",
                    ));
                }
            }
            unique.retain(|id| all.iter().any(|d| d.id == *id));
            (unique, true)
        }
    };
    for id in targets {
        details.push(process_one(rag, scope, id, reprocess).await?);
    }
    // Report in the order asked for (not-found entries were added first).
    if let Some(ids) = ids {
        details.sort_by_key(|d| ids.iter().position(|id| *id == d.document_id));
    }
    Ok(details)
}

/// Claims and processes one document, or, when the worker (or another request) has it, reports
/// how that ends.
async fn process_one(
    rag: &Rag,
    scope: &TenantScope,
    id: Uuid,
    reprocess: bool,
) -> Result<ProcessDetail, RagError> {
    let claim_id = Uuid::new_v4();
    let claimed =
        db::documents::claim(&rag.db, scope, id, reprocess, claim_id, lease_until(rag)).await?;
    Ok(match claimed {
        Some(claimed) => process_claimed(rag, &claimed, claim_id).await,
        None => match wait_until_settled(rag, scope, id, SETTLE_TIMEOUT).await {
            Some(doc) => ProcessDetail::of(doc),
            None => ProcessDetail::not_found(id, "Document deleted while processing"),
        },
    })
}
