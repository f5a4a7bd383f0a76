//! Resources as the API returns them (and as rows come out of the database).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

/// Implements `sqlx::FromRow` for both backends by reading each field by column name.
#[macro_export]
macro_rules! impl_from_row {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl<'r> ::sqlx::FromRow<'r, ::sqlx::postgres::PgRow> for $ty {
            fn from_row(row: &'r ::sqlx::postgres::PgRow) -> ::sqlx::Result<Self> {
                use ::sqlx::Row as _;
                Ok(Self { $($field: row.try_get(stringify!($field))?),* })
            }
        }
        impl<'r> ::sqlx::FromRow<'r, ::sqlx::sqlite::SqliteRow> for $ty {
            fn from_row(row: &'r ::sqlx::sqlite::SqliteRow) -> ::sqlx::Result<Self> {
                use ::sqlx::Row as _;
                Ok(Self { $($field: row.try_get(stringify!($field))?),* })
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
impl_from_row!(Tenant {
    id,
    name,
    created_at,
    updated_at
});

/// The answer to tenant creation: the tenant plus its API key, shown this once only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantCreated {
    #[serde(flatten)]
    pub tenant: Tenant,
    /// Exchange it for a JWT at `POST /api/v1/auth/token`. Only a hash is stored: keep it safe.
    pub api_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Workspace {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
impl_from_row!(Workspace {
    id,
    tenant_id,
    name,
    created_at,
    updated_at
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Teammate {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    /// Routing between the teammate's assistants (see the query endpoint).
    #[schema(value_type = Option<Object>)]
    pub orchestration_config: Option<Json<Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
impl_from_row!(Teammate {
    id,
    tenant_id,
    workspace_id,
    name,
    orchestration_config,
    created_at,
    updated_at
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Assistant {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub teammate_id: Uuid,
    /// The assistant's knowledge base (documents are uploaded into it).
    pub knowledge_base_id: Uuid,
    pub name: String,
    /// LLM model for this assistant; the server default when null.
    pub model: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
impl_from_row!(Assistant {
    id,
    tenant_id,
    teammate_id,
    knowledge_base_id,
    name,
    model,
    created_at,
    updated_at
});

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Instruction {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub assistant_id: Uuid,
    pub system_prompt: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
impl_from_row!(Instruction {
    id,
    tenant_id,
    assistant_id,
    system_prompt,
    created_at,
    updated_at
});

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Document {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub knowledge_base_id: Uuid,
    /// The client's file name (metadata only; the bytes are stored under a generated name).
    pub file_name: String,
    /// The upload's media type, as the original API answered it: the `Content-Type` the client
    /// gave the file part, else the detected kind's (e.g. `text/plain`).
    #[schema(examples("text/plain"))]
    pub file_type: String,
    /// The same as `file_type` (this server's earlier name for it).
    pub content_type: String,
    /// The detected kind, which decides how the text is extracted.
    #[schema(schema_with = document_kind_schema)]
    pub kind: String,
    pub size_bytes: i64,
    /// `pending` → `processing` → `completed` | `failed`.
    pub processed_status: DocumentStatus,
    /// Why processing failed (when `failed`).
    pub error: Option<String>,
    pub chunk_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub storage_key: String,
}
impl_from_row!(Document {
    id,
    tenant_id,
    knowledge_base_id,
    file_name,
    file_type,
    content_type,
    kind,
    size_bytes,
    processed_status,
    error,
    chunk_count,
    created_at,
    updated_at,
    storage_key,
});

/// The kinds of document the server reads (`Document::kind`; `rag::extract::FileType` holds to it).
pub const DOCUMENT_KINDS: [&str; 7] = ["text", "markdown", "csv", "json", "html", "pdf", "docx"];

fn document_kind_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(DOCUMENT_KINDS))
        .build()
}

/// Where a document is in processing: `pending` → `processing` → `completed` | `failed`. The
/// same strings in the database (`processed_status`) and in the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    /// Stored (and its text extracted), waiting in the queue.
    Pending,
    /// Claimed by the worker or a process-batch request.
    Processing,
    /// Chunked, embedded and indexed.
    Completed,
    /// Extraction or processing failed (see `error`).
    Failed,
}

impl DocumentStatus {
    pub const ALL: [DocumentStatus; 4] = [
        DocumentStatus::Pending,
        DocumentStatus::Processing,
        DocumentStatus::Completed,
        DocumentStatus::Failed,
    ];

    /// Completed or failed: only processing (the worker, a process-batch request) changes it.
    pub const fn is_settled(self) -> bool {
        matches!(self, DocumentStatus::Completed | DocumentStatus::Failed)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Pending => "pending",
            DocumentStatus::Processing => "processing",
            DocumentStatus::Completed => "completed",
            DocumentStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for DocumentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stored as its text, on both backends.
impl<DB: sqlx::Database> sqlx::Type<DB> for DocumentStatus
where
    str: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as sqlx::Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for DocumentStatus
where
    &'r str: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
        DocumentStatus::parse(text)
            .ok_or_else(|| format!("unknown document status {text:?}").into())
    }
}

/// A page of a collection.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListResponse<T: ToSchema> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_statuses_are_the_same_text_in_the_database_and_the_api() {
        for status in DocumentStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(DocumentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            DocumentStatus::ALL.map(DocumentStatus::as_str),
            ["pending", "processing", "completed", "failed"]
        );
        assert_eq!(DocumentStatus::parse("done"), None);
    }

    #[test]
    fn the_schema_allows_exactly_the_document_statuses() {
        let quoted: Vec<String> = DocumentStatus::ALL
            .iter()
            .map(|s| format!("'{s}'"))
            .collect();
        let check = format!("CHECK (processed_status IN ({}))", quoted.join(", "));
        for schema in [
            include_str!("../migrations/postgres/0001_initial.sql"),
            include_str!("../migrations/sqlite/0001_initial.sql"),
        ] {
            assert!(schema.contains(&check), "{check}");
        }
    }
}
