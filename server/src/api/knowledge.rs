//! An assistant's knowledge base: upload, processing, status, and the documents themselves.

use axum::Json;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use super::common::{PathId, page_of};
use crate::api::auth::TenantAuth;
use crate::db::{self, documents::NewDocument};
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError, ValidationErrorBody};
use crate::extract::{ApiJson, OptionalJson, Pagination, Validate, check_name, parse_id};
use crate::models::{Assistant, Document, ListResponse};
use crate::rag::extract::{self as extraction, SUPPORTED};
use crate::rag::pipeline::{ProcessDetail, extract_file, lease_until, process_claimed};
use crate::rag::worker::wait_until_settled;
use crate::state::AppState;
use crate::storage::Storage;

/// Multipart framing around the file (boundaries, headers) allowed on top of `MAX_UPLOAD_BYTES`.
const MULTIPART_OVERHEAD: usize = 64 * 1024;
pub const MAX_BATCH: usize = 100;
/// How long process-batch waits for a document someone else is processing.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn router(max_upload_bytes: u64) -> OpenApiRouter<AppState> {
    let upload_limit = usize::try_from(max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MULTIPART_OVERHEAD);
    OpenApiRouter::new()
        .routes(routes!(upload).layer(DefaultBodyLimit::max(upload_limit)))
        .routes(routes!(process_batch))
        .routes(routes!(status))
        .routes(routes!(list_documents))
        .routes(routes!(
            get_document,
            patch_document,
            put_document,
            delete_document
        ))
}

async fn assistant(state: &AppState, auth: &TenantAuth, raw: &str) -> ApiResult<Assistant> {
    let id = parse_id(raw, "Assistant")?;
    db::assistants::get(&state.db, &auth.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Assistant"))
}

/// The client's file name, reduced to a harmless display name (it is metadata only).
fn clean_file_name(raw: Option<&str>) -> String {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "upload".into()
    } else {
        cleaned
    }
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The document: text, Markdown, CSV, JSON, HTML, PDF or DOCX.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Upload a document into the assistant's knowledge base (multipart field `file`). It is stored
/// under a generated name and queued (`pending`) for processing.
#[utoipa::path(
    post, path = "/api/v1/assistants/{assistant_id}/knowledge/upload", tag = "knowledge",
    params(("assistant_id" = Uuid, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Document), (status = 404, body = ErrorBody),
        (status = 413, description = "Larger than MAX_UPLOAD_BYTES", body = ErrorBody),
        (status = 415, description = "Unsupported file type", body = ErrorBody),
        (status = 422, body = ValidationErrorBody),
    ),
    security(("bearer" = [], "tenant" = []))
)]
async fn upload(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let assistant = assistant(&state, &auth, &id).await?;
    let mut multipart = multipart.map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            ["body"],
            "Expected multipart/form-data with a `file` field",
            "value_error",
        )])
    })?;
    let max = state.config.max_upload_bytes;
    let too_large =
        || ApiError::PayloadTooLarge(format!("File larger than the limit of {max} bytes"));
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::BadRequest("Malformed multipart body".into())
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let file_name = clean_file_name(field.file_name());
        let content_type = field.content_type().map(str::to_string);
        let kind = extraction::detect(&file_name, content_type.as_deref()).ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!("Unsupported file type. Supported: {SUPPORTED}"))
        })?;
        let tenant_id = auth.scope.tenant_id();
        let temp = state
            .storage
            .temp_path(tenant_id, assistant.knowledge_base_id)
            .await
            .map_err(ApiError::internal)?;
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(ApiError::internal)?;
        let mut size: u64 = 0;
        let written: ApiResult<()> = async {
            while let Some(bytes) = field.chunk().await.map_err(multipart_error)? {
                size += bytes.len() as u64;
                if size > max {
                    return Err(too_large());
                }
                file.write_all(&bytes).await.map_err(ApiError::internal)?;
            }
            file.flush().await.map_err(ApiError::internal)?;
            file.sync_all().await.map_err(ApiError::internal)?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
        if size == 0 {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(ApiError::validation(vec![FieldError::body(
                "file",
                "The file is empty",
                "value_error",
            )]));
        }
        let document_id = db::new_id();
        let key = Storage::key(tenant_id, assistant.knowledge_base_id, document_id);
        let final_path = state.storage.path(&key).map_err(ApiError::internal)?;
        tokio::fs::rename(&temp, &final_path)
            .await
            .map_err(ApiError::internal)?;
        let created = db::documents::create(
            &state.db,
            &auth.scope,
            NewDocument {
                id: document_id,
                knowledge_base_id: assistant.knowledge_base_id,
                file_name: &file_name,
                file_type: kind.as_str(),
                content_type: content_type.as_deref().unwrap_or(kind.mime()),
                size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
                storage_key: &key,
            },
        )
        .await;
        return match created {
            Ok(Some(document)) => {
                // Extract the text now (the contract: store, extract, queue), so processing never
                // needs this replica's disk. A parser failure marks the document `failed`.
                let extracted = extract_file(kind, final_path).await;
                db::documents::set_extraction(
                    &state.db,
                    &auth.scope,
                    document.id,
                    extracted.as_deref().map_err(String::as_str),
                )
                .await?;
                match &extracted {
                    Ok(text) => {
                        tracing::info!(document_id = %document.id, size, chars = text.chars().count(), file_type = kind.as_str(), "document uploaded and queued");
                        state.queue.notify_one();
                    }
                    Err(reason) => {
                        tracing::info!(document_id = %document.id, size, file_type = kind.as_str(), %reason, "document uploaded; extraction failed");
                    }
                }
                let document = db::documents::get(&state.db, &auth.scope, document.id)
                    .await?
                    .unwrap_or(document);
                Ok((StatusCode::CREATED, Json(document)))
            }
            Ok(None) => {
                state.storage.remove(&key).await;
                Err(ApiError::not_found("Assistant"))
            }
            Err(e) => {
                state.storage.remove(&key).await;
                Err(e.into())
            }
        };
    }
    Err(ApiError::validation(vec![FieldError::body(
        "file",
        "Field required",
        "missing",
    )]))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ProcessBatchRequest {
    /// Process exactly these documents (pending, failed or completed: they are re-processed);
    /// when omitted, every pending document of the knowledge base.
    #[serde(default)]
    pub document_ids: Option<Vec<Uuid>>,
}

impl Validate for ProcessBatchRequest {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Some(ids) = &self.document_ids
            && ids.len() > MAX_BATCH
        {
            errors.push(FieldError::body(
                "document_ids",
                format!("List should have at most {MAX_BATCH} items"),
                "too_long",
            ));
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessBatchResponse {
    pub processed: i64,
    pub failed: i64,
    pub details: Vec<ProcessDetail>,
}

/// Chunk, embed and index the pending (or the named) documents, now.
#[utoipa::path(
    post, path = "/api/v1/assistants/{assistant_id}/knowledge/process-batch", tag = "knowledge",
    params(("assistant_id" = Uuid, Path)), request_body(content = Option<ProcessBatchRequest>),
    responses((status = 200, body = ProcessBatchResponse), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [], "tenant" = []))
)]
async fn process_batch(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    OptionalJson(body): OptionalJson<ProcessBatchRequest>,
) -> ApiResult<Json<ProcessBatchResponse>> {
    let assistant = assistant(&state, &auth, &id).await?;
    let all =
        db::documents::all_in_knowledge_base(&state.db, &auth.scope, assistant.knowledge_base_id)
            .await?;
    let mut details = Vec::new();
    // What to process: every pending document, or exactly the named ones (then failed and
    // completed ones are processed again).
    let (targets, reprocess): (Vec<Uuid>, bool) = match &body.document_ids {
        None => (
            all.iter()
                .filter(|d| d.processed_status == "pending")
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
                    details.push(ProcessDetail {
                        document_id: *id,
                        file_name: None,
                        status: "not_found".into(),
                        chunks: 0,
                        error: Some("Document not found in this knowledge base".into()),
                    });
                }
            }
            unique.retain(|id| all.iter().any(|d| d.id == *id));
            (unique, true)
        }
    };
    for id in targets {
        let claim_id = Uuid::new_v4();
        match db::documents::claim(
            &state.db,
            &auth.scope,
            id,
            reprocess,
            claim_id,
            lease_until(&state),
        )
        .await?
        {
            Some(claimed) => details.push(process_claimed(&state, &claimed, claim_id).await),
            None => {
                // The worker (or another request) has it: report how it ends.
                let settled = wait_until_settled(&state, &auth.scope, id, SETTLE_TIMEOUT).await;
                details.push(match settled {
                    Some(doc) => ProcessDetail {
                        document_id: doc.id,
                        chunks: doc.chunk_count,
                        error: doc.error.clone(),
                        status: doc.processed_status.clone(),
                        file_name: Some(doc.file_name),
                    },
                    None => ProcessDetail {
                        document_id: id,
                        file_name: None,
                        status: "not_found".into(),
                        chunks: 0,
                        error: Some("Document deleted while processing".into()),
                    },
                });
            }
        }
    }
    // Report in the order asked for (not-found entries were added first).
    if let Some(ids) = &body.document_ids {
        details.sort_by_key(|d| ids.iter().position(|id| *id == d.document_id));
    }
    let processed = details.iter().filter(|d| d.status == "completed").count() as i64;
    let failed = details.iter().filter(|d| d.status == "failed").count() as i64;
    Ok(Json(ProcessBatchResponse {
        processed,
        failed,
        details,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KnowledgeStatus {
    pub assistant_id: Uuid,
    pub knowledge_base_id: Uuid,
    pub total: i64,
    pub pending: i64,
    pub processing: i64,
    pub completed: i64,
    pub failed: i64,
    pub documents: Vec<Document>,
}

/// Processing state of the assistant's documents.
#[utoipa::path(
    get, path = "/api/v1/assistants/{assistant_id}/knowledge/status", tag = "knowledge",
    params(("assistant_id" = Uuid, Path)),
    responses((status = 200, body = KnowledgeStatus), (status = 404, body = ErrorBody)),
    security(("bearer" = [], "tenant" = []))
)]
async fn status(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<Json<KnowledgeStatus>> {
    let assistant = assistant(&state, &auth, &id).await?;
    let documents =
        db::documents::all_in_knowledge_base(&state.db, &auth.scope, assistant.knowledge_base_id)
            .await?;
    let count = |s: &str| documents.iter().filter(|d| d.processed_status == s).count() as i64;
    Ok(Json(KnowledgeStatus {
        assistant_id: assistant.id,
        knowledge_base_id: assistant.knowledge_base_id,
        total: documents.len() as i64,
        pending: count("pending"),
        processing: count("processing"),
        completed: count("completed"),
        failed: count("failed"),
        documents,
    }))
}

/// List the documents of the assistant's knowledge base (`name` filters on the file name).
#[utoipa::path(
    get, path = "/api/v1/assistants/{assistant_id}/knowledge/documents", tag = "knowledge",
    params(("assistant_id" = Uuid, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("name" = Option<String>, Query)),
    responses((status = 200, body = ListResponse<Document>), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [], "tenant" = []))
)]
async fn list_documents(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    Pagination(page): Pagination,
) -> ApiResult<Json<ListResponse<Document>>> {
    let assistant = assistant(&state, &auth, &id).await?;
    let (items, total) =
        db::documents::list(&state.db, &auth.scope, assistant.knowledge_base_id, &page).await?;
    Ok(Json(page_of(items, total, &page)))
}

/// One document.
#[utoipa::path(
    get, path = "/api/v1/documents/{document_id}", tag = "knowledge",
    params(("document_id" = Uuid, Path)),
    responses((status = 200, body = Document), (status = 404, body = ErrorBody)),
    security(("bearer" = [], "tenant" = []))
)]
async fn get_document(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<Json<Document>> {
    let id = parse_id(&id, "Document")?;
    let doc = db::documents::get(&state.db, &auth.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Document"))?;
    Ok(Json(doc))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameDocument {
    pub file_name: String,
}

impl Validate for RenameDocument {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_name("file_name", &self.file_name, errors);
    }
}

/// Rename a document (its display name; the stored bytes are unchanged).
#[utoipa::path(
    patch, path = "/api/v1/documents/{document_id}", tag = "knowledge",
    params(("document_id" = Uuid, Path)), request_body = RenameDocument,
    responses((status = 200, body = Document), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [], "tenant" = []))
)]
async fn patch_document(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<RenameDocument>,
) -> ApiResult<Json<Document>> {
    let id = parse_id(&id, "Document")?;
    let name = clean_file_name(Some(body.file_name.trim()));
    let doc = db::documents::rename(&state.db, &auth.scope, id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("Document"))?;
    Ok(Json(doc))
}

/// Rename a document (alias of PATCH).
#[utoipa::path(
    put, path = "/api/v1/documents/{document_id}", tag = "knowledge",
    params(("document_id" = Uuid, Path)), request_body = RenameDocument,
    responses((status = 200, body = Document), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [], "tenant" = []))
)]
async fn put_document(
    state: State<AppState>,
    auth: TenantAuth,
    id: PathId,
    body: ApiJson<RenameDocument>,
) -> ApiResult<Json<Document>> {
    patch_document(state, auth, id, body).await
}

/// Delete a document, its stored file and its indexed chunks.
#[utoipa::path(
    delete, path = "/api/v1/documents/{document_id}", tag = "knowledge",
    params(("document_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = [], "tenant" = []))
)]
async fn delete_document(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "Document")?;
    let doc = db::documents::delete(&state.db, &auth.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Document"))?;
    state.storage.remove(&doc.storage_key).await;
    if let Err(e) = state
        .vectors
        .delete_document(&auth.scope, doc.knowledge_base_id, doc.id)
        .await
    {
        tracing::warn!(document_id = %doc.id, error = %e, "could not delete the document's vectors");
    }
    Ok(StatusCode::NO_CONTENT)
}
