//! An assistant's knowledge base: upload, processing, status, and the documents themselves.

use axum::Json;
use axum::extract::multipart::{Field, Multipart, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use super::common::{PathId, cached_resource, page_of};
use crate::api::auth::TenantAuth;
use crate::api::extract::{
    ApiJson, ListParams, OptionalJson, Pagination, Validate, check_name, parse_id,
};
use crate::bounds::{self, MAX_BATCH};
use crate::db;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError, ValidationErrorBody};
use crate::models::{Assistant, Document, DocumentStatus, ListResponse};
use crate::rag::extract::{self as extraction, FileType, SUPPORTED};
use crate::rag::ingest::{self, Upload};
use crate::rag::pipeline::{ProcessDetail, ProcessStatus};
use crate::state::AppState;
use axum::response::Response;

/// Multipart framing around the file (boundaries, headers) allowed on top of `MAX_UPLOAD_BYTES`.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub fn router(max_upload_bytes: u64) -> OpenApiRouter<AppState> {
    let upload_limit = usize::try_from(max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MULTIPART_OVERHEAD);
    let mut router = OpenApiRouter::new()
        .routes(routes!(upload).layer(DefaultBodyLimit::max(upload_limit)))
        .routes(routes!(process_batch))
        .routes(routes!(status))
        .routes(routes!(list_documents))
        .routes(routes!(
            get_document,
            patch_document,
            put_document,
            delete_document
        ));
    document_upload_types(router.get_openapi_mut());
    router
}

/// The upload's `file` part may carry any media type the server reads (the type is detected from
/// the file name's extension, else from the part's `Content-Type`).
fn document_upload_types(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::encoding::Encoding;
    let media_types: Vec<&str> = FileType::ALL.iter().map(|t| t.mime()).collect();
    let upload = doc
        .paths
        .paths
        .get_mut("/api/v1/assistants/{assistant_id}/knowledge/upload")
        .and_then(|item| item.post.as_mut())
        .and_then(|op| op.request_body.as_mut());
    if let Some(RefOr::T(body)) = upload
        && let Some(RefOr::T(form)) = body.content.get_mut("multipart/form-data")
    {
        let mut encoding = Encoding::default();
        encoding.content_type = Some(media_types.join(", "));
        form.encoding.insert("file".into(), encoding);
    }
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
    /// The document, not empty: text, Markdown, CSV, JSON, HTML, PDF or DOCX, known by the file
    /// name's extension or else by the part's `Content-Type` (anything else is a 415).
    #[schema(value_type = String, format = Binary, min_length = 1)]
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
    security(("bearer" = []))
)]
async fn upload(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let assistant = assistant(&state, &auth, &id).await?;
    let multipart = multipart.map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            ["body"],
            "Expected multipart/form-data with a `file` field",
            "value_error",
        )])
    })?;
    let upload = receive_file(&state, &auth, assistant.knowledge_base_id, multipart).await?;
    let document =
        ingest::add_document(&state.rag, &auth.scope, assistant.knowledge_base_id, upload).await?;
    state.changed(&auth.scope).await;
    Ok((StatusCode::CREATED, Json(document)))
}

/// Writes the multipart field `file` to a temporary file of the knowledge base: 415 for a type
/// that cannot be read, 413 past `MAX_UPLOAD_BYTES`, 422 when it is empty or missing.
async fn receive_file(
    state: &AppState,
    auth: &TenantAuth,
    knowledge_base_id: Uuid,
    mut multipart: Multipart,
) -> ApiResult<Upload> {
    let limit = UploadLimit(state.config.max_upload_bytes);
    let mut field = loop {
        match multipart.next_field().await.map_err(|e| limit.error(e))? {
            Some(field) if field.name() == Some("file") => break field,
            Some(_) => {}
            None => {
                return Err(ApiError::validation(vec![FieldError::body(
                    "file",
                    "Field required",
                    "missing",
                )]));
            }
        }
    };
    let file_name = clean_file_name(field.file_name());
    let content_type = field.content_type().map(str::to_string);
    let kind = extraction::detect(&file_name, content_type.as_deref()).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!("Unsupported file type. Supported: {SUPPORTED}"))
    })?;
    let temp = state
        .storage
        .temp_path(auth.scope.tenant_id(), knowledge_base_id)
        .await
        .map_err(ApiError::internal)?;
    let size = match write_field(&mut field, &temp, limit).await {
        Ok(0) => Err(ApiError::validation(vec![FieldError::body(
            "file",
            "The file is empty",
            "value_error",
        )])),
        written => written,
    };
    if size.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    Ok(Upload {
        temp,
        file_name,
        content_type,
        kind,
        size: size?,
    })
}

/// `MAX_UPLOAD_BYTES`, and the errors of a body that goes past it or breaks off.
#[derive(Clone, Copy)]
struct UploadLimit(u64);

impl UploadLimit {
    fn too_large(self) -> ApiError {
        ApiError::PayloadTooLarge(format!("File larger than the limit of {} bytes", self.0))
    }

    fn error(self, e: MultipartError) -> ApiError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            self.too_large()
        } else {
            ApiError::BadRequest("Malformed multipart body".into())
        }
    }
}

/// Streams the field into a new file at `path` (synced), up to the limit; its size.
async fn write_field(
    field: &mut Field<'_>,
    path: &std::path::Path,
    limit: UploadLimit,
) -> ApiResult<u64> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(ApiError::internal)?;
    let mut size: u64 = 0;
    while let Some(bytes) = field.chunk().await.map_err(|e| limit.error(e))? {
        size += bytes.len() as u64;
        if size > limit.0 {
            return Err(limit.too_large());
        }
        file.write_all(&bytes).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    file.sync_all().await.map_err(ApiError::internal)?;
    Ok(size)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ProcessBatchRequest {
    /// Process exactly these documents (pending, failed or completed: they are re-processed);
    /// when absent or `null`, every pending document of the knowledge base.
    #[serde(default)]
    #[schema(schema_with = bounds::document_ids)]
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
    security(("bearer" = []))
)]
async fn process_batch(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
    OptionalJson(body): OptionalJson<ProcessBatchRequest>,
) -> ApiResult<Json<ProcessBatchResponse>> {
    let assistant = assistant(&state, &auth, &id).await?;
    let details = ingest::process_batch(
        &state.rag,
        &auth.scope,
        assistant.knowledge_base_id,
        body.document_ids.as_deref(),
    )
    .await?;
    let count = |s: ProcessStatus| details.iter().filter(|d| d.status == s).count() as i64;
    let (processed, failed) = (
        count(ProcessStatus::Completed),
        count(ProcessStatus::Failed),
    );
    state.changed(&auth.scope).await;
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
    security(("bearer" = []))
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
    let count =
        |s: DocumentStatus| documents.iter().filter(|d| d.processed_status == s).count() as i64;
    Ok(Json(KnowledgeStatus {
        assistant_id: assistant.id,
        knowledge_base_id: assistant.knowledge_base_id,
        total: documents.len() as i64,
        pending: count(DocumentStatus::Pending),
        processing: count(DocumentStatus::Processing),
        completed: count(DocumentStatus::Completed),
        failed: count(DocumentStatus::Failed),
        documents,
    }))
}

/// List the documents of the assistant's knowledge base (`name` filters on the file name).
#[utoipa::path(
    get, path = "/api/v1/assistants/{assistant_id}/knowledge/documents", tag = "knowledge",
    params(("assistant_id" = Uuid, Path), ListParams),
    responses((status = 200, body = ListResponse<Document>), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
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
    security(("bearer" = []))
)]
async fn get_document(
    State(state): State<AppState>,
    auth: TenantAuth,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let id = parse_id(&id, "Document")?;
    let scope = &auth.scope;
    cached_resource(
        &state,
        scope,
        "Document",
        id,
        |d: &Document| d.processed_status.is_settled(),
        || async { Ok(db::documents::get(&state.db, scope, id).await?) },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameDocument {
    /// The new display name (directories are stripped).
    #[schema(schema_with = bounds::name)]
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
    security(("bearer" = []))
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
    state.changed(&auth.scope).await;
    Ok(Json(doc))
}

/// Rename a document (alias of PATCH).
#[utoipa::path(
    put, path = "/api/v1/documents/{document_id}", tag = "knowledge",
    params(("document_id" = Uuid, Path)), request_body = RenameDocument,
    responses((status = 200, body = Document), (status = 404, body = ErrorBody), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = []))
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
    security(("bearer" = []))
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
        .rag
        .vectors
        .delete_document(&auth.scope, doc.knowledge_base_id, doc.id)
        .await
    {
        tracing::warn!(document_id = %doc.id, error = %e, "could not delete the document's vectors");
    }
    state.changed(&auth.scope).await;
    Ok(StatusCode::NO_CONTENT)
}
