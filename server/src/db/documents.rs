use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, Page, now};
use crate::models::{Document, DocumentStatus};
use crate::tenancy::TenantScope;
use crate::with_pool;

/// A document as the API shows it: the column `content_type` (the media type) is its
/// `file_type`, as the original API named it, and the column `file_type` its `kind`.
const COLUMNS: &str = "id, tenant_id, knowledge_base_id, file_name, content_type AS file_type, content_type, \
                       file_type AS kind, size_bytes, processed_status, error, chunk_count, created_at, updated_at, \
                       storage_key";

pub struct NewDocument<'a> {
    pub id: Uuid,
    pub knowledge_base_id: Uuid,
    pub file_name: &'a str,
    /// The detected kind (column `file_type`).
    pub kind: &'a str,
    /// The media type (column `content_type`).
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub storage_key: &'a str,
}

/// Records an uploaded document as `pending`; `None` when the knowledge base is gone.
pub async fn create(
    db: &Db,
    scope: &TenantScope,
    doc: NewDocument<'_>,
) -> Result<Option<Document>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO documents (id, tenant_id, knowledge_base_id, file_name, file_type, content_type, size_bytes, \
         storage_key, processed_status, chunk_count, created_at, updated_at) \
         SELECT $1, tenant_id, id, $2, $3, $4, $5, $6, 'pending', 0, $7, $7 FROM knowledge_bases \
         WHERE id = $8 AND tenant_id = $9 RETURNING {COLUMNS}"
    );
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(doc.id)
            .bind(doc.file_name)
            .bind(doc.kind)
            .bind(doc.content_type)
            .bind(doc.size_bytes)
            .bind(doc.storage_key)
            .bind(now())
            .bind(doc.knowledge_base_id)
            .bind(scope.tenant_id())
            .fetch_optional(pool)
            .await
    })
}

pub async fn get(db: &Db, scope: &TenantScope, id: Uuid) -> Result<Option<Document>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE id = $1 AND tenant_id = $2");
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).bind(scope.tenant_id()).fetch_optional(pool).await
    })
}

pub async fn list(
    db: &Db,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
    page: &Page,
) -> Result<(Vec<Document>, i64), sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM documents WHERE knowledge_base_id = $1 AND tenant_id = $2 \
         AND ($3 IS NULL OR file_name = $3) ORDER BY created_at, id LIMIT $4 OFFSET $5"
    );
    let count_sql = "SELECT COUNT(*) FROM documents WHERE knowledge_base_id = $1 AND tenant_id = $2 \
                     AND ($3 IS NULL OR file_name = $3)";
    with_pool!(db, pool => {
        let items: Vec<Document> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(knowledge_base_id)
            .bind(scope.tenant_id())
            .bind(&page.name)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(pool)
            .await?;
        let total: i64 = sqlx::query_scalar(count_sql)
            .bind(knowledge_base_id)
            .bind(scope.tenant_id())
            .bind(&page.name)
            .fetch_one(pool)
            .await?;
        Ok((items, total))
    })
}

/// Every document of a knowledge base, oldest first.
pub async fn all_in_knowledge_base(
    db: &Db,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
) -> Result<Vec<Document>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM documents WHERE knowledge_base_id = $1 AND tenant_id = $2 ORDER BY created_at, id"
    );
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(knowledge_base_id)
            .bind(scope.tenant_id())
            .fetch_all(pool)
            .await
    })
}

pub async fn rename(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
    file_name: &str,
) -> Result<Option<Document>, sqlx::Error> {
    let sql = format!(
        "UPDATE documents SET file_name = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2 RETURNING {COLUMNS}"
    );
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .bind(scope.tenant_id())
            .bind(file_name)
            .bind(now())
            .fetch_optional(pool)
            .await
    })
}

/// Deletes the row and returns it (the caller removes the stored bytes).
pub async fn delete(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
) -> Result<Option<Document>, sqlx::Error> {
    let sql = format!("DELETE FROM documents WHERE id = $1 AND tenant_id = $2 RETURNING {COLUMNS}");
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).bind(scope.tenant_id()).fetch_optional(pool).await
    })
}

/// Records the text extracted at upload (the document stays `pending`), or the extraction error
/// (the document becomes `failed`).
pub async fn set_extraction(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
    result: Result<&str, &str>,
) -> Result<bool, sqlx::Error> {
    let (content, status, error) = match result {
        Ok(text) => (Some(text), DocumentStatus::Pending, None),
        Err(e) => (None, DocumentStatus::Failed, Some(e)),
    };
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE documents SET content = $3, processed_status = $4, error = $5, updated_at = $6 \
             WHERE id = $1 AND tenant_id = $2 AND processed_status = 'pending'",
        )
        .bind(id)
        .bind(scope.tenant_id())
        .bind(content)
        .bind(status.as_str())
        .bind(error)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected() > 0)
    })
}

/// The extracted text (`None` when extraction has not happened).
pub async fn content(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<Option<String>> = with_pool!(db, pool => {
        sqlx::query_scalar("SELECT content FROM documents WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(scope.tenant_id())
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.flatten())
}

/// Claims one document for processing: `pending` ones, and with `reprocess` also `failed` and
/// `completed` ones. Returns the claimed row, or `None` when it is not claimable (someone else is
/// processing it, or it does not exist). Atomic: two claimers never both succeed.
pub async fn claim(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
    reprocess: bool,
    claim_id: Uuid,
    lease_until: DateTime<Utc>,
) -> Result<Option<Document>, sqlx::Error> {
    let sql = format!(
        "UPDATE documents SET processed_status = 'processing', claim_id = $3, lease_expires_at = $4, \
         attempts = attempts + 1, error = NULL, updated_at = $5 \
         WHERE id = $1 AND tenant_id = $2 AND (processed_status = 'pending' \
         OR ($6 AND processed_status IN ('failed', 'completed'))) RETURNING {COLUMNS}"
    );
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .bind(scope.tenant_id())
            .bind(claim_id)
            .bind(lease_until)
            .bind(now())
            .bind(reprocess)
            .fetch_optional(pool)
            .await
    })
}

/// The queue: claims the oldest `pending` document of any tenant (the worker is a trusted
/// system component; the returned row says which tenant it belongs to).
pub async fn claim_next(
    db: &Db,
    claim_id: Uuid,
    lease_until: DateTime<Utc>,
) -> Result<Option<Document>, sqlx::Error> {
    let sql = format!(
        "UPDATE documents SET processed_status = 'processing', claim_id = $1, lease_expires_at = $2, \
         attempts = attempts + 1, error = NULL, updated_at = $3 \
         WHERE id = (SELECT id FROM documents WHERE processed_status = 'pending' ORDER BY created_at, id LIMIT 1) \
         AND processed_status = 'pending' RETURNING {COLUMNS}"
    );
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(claim_id)
            .bind(lease_until)
            .bind(now())
            .fetch_optional(pool)
            .await
    })
}

/// Keeps a claim alive while processing takes long. False when the claim was lost.
pub async fn extend_lease(
    db: &Db,
    id: Uuid,
    claim_id: Uuid,
    lease_until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE documents SET lease_expires_at = $3 WHERE id = $1 AND claim_id = $2 AND processed_status = 'processing'",
        )
        .bind(id)
        .bind(claim_id)
        .bind(lease_until)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() > 0)
    })
}

/// Records the outcome, only if the claim is still ours (a claim that expired and was taken over
/// must not be overwritten by the slow first owner).
pub async fn finish(
    db: &Db,
    id: Uuid,
    claim_id: Uuid,
    status: DocumentStatus,
    error: Option<&str>,
    chunk_count: i64,
) -> Result<bool, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE documents SET processed_status = $3, error = $4, chunk_count = $5, claim_id = NULL, \
             lease_expires_at = NULL, updated_at = $6 WHERE id = $1 AND claim_id = $2 AND processed_status = 'processing'",
        )
        .bind(id)
        .bind(claim_id)
        .bind(status.as_str())
        .bind(error)
        .bind(chunk_count)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected() > 0)
    })
}

/// Documents whose worker died (lease expired) go back to the queue, or fail after
/// `max_attempts`. Returns (requeued, failed).
pub async fn reclaim_expired(db: &Db, max_attempts: i32) -> Result<(u64, u64), sqlx::Error> {
    let ts = now();
    with_pool!(db, pool => {
        let failed = sqlx::query(
            "UPDATE documents SET processed_status = 'failed', \
             error = 'processing was interrupted too many times', claim_id = NULL, lease_expires_at = NULL, updated_at = $1 \
             WHERE processed_status = 'processing' AND lease_expires_at < $1 AND attempts >= $2",
        )
        .bind(ts)
        .bind(max_attempts)
        .execute(pool)
        .await?
        .rows_affected();
        let requeued = sqlx::query(
            "UPDATE documents SET processed_status = 'pending', claim_id = NULL, lease_expires_at = NULL, updated_at = $1 \
             WHERE processed_status = 'processing' AND lease_expires_at < $1",
        )
        .bind(ts)
        .execute(pool)
        .await?
        .rows_affected();
        Ok((requeued, failed))
    })
}

/// Documents waiting for processing, across tenants (a metric).
pub async fn queue_depth(db: &Db) -> Result<i64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE processed_status = 'pending'").fetch_one(pool).await
    })
}

/// Knowledge bases in a subtree, for removing stored files after a cascading delete.
pub enum Subtree {
    Workspace(Uuid),
    Teammate(Uuid),
}

pub async fn knowledge_bases_under(
    db: &Db,
    scope: &TenantScope,
    subtree: Subtree,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let (sql, id) = match subtree {
        Subtree::Workspace(id) => (
            "SELECT kb.id FROM knowledge_bases kb JOIN assistants a ON a.id = kb.assistant_id \
             JOIN teammates t ON t.id = a.teammate_id WHERE t.workspace_id = $1 AND kb.tenant_id = $2",
            id,
        ),
        Subtree::Teammate(id) => (
            "SELECT kb.id FROM knowledge_bases kb JOIN assistants a ON a.id = kb.assistant_id \
             WHERE a.teammate_id = $1 AND kb.tenant_id = $2",
            id,
        ),
    };
    with_pool!(db, pool => {
        sqlx::query_scalar(sql).bind(id).bind(scope.tenant_id()).fetch_all(pool).await
    })
}

/// Current file names of the given documents that are `completed` in the scoped tenant (vector
/// hits for anything else are stale and dropped).
pub async fn completed_names(
    db: &Db,
    scope: &TenantScope,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT id, file_name FROM documents WHERE tenant_id = $1 AND processed_status = 'completed' AND id IN ({})",
        placeholders.join(", ")
    );
    let rows: Vec<(Uuid, String)> = with_pool!(db, pool => {
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(scope.tenant_id());
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(pool).await
    })?;
    Ok(rows.into_iter().collect())
}

/// The newest completed document that has chunks, anywhere (an operations query, like the
/// queue's: the smoke test after a restore picks what to ask about), with its assistant and
/// teammate.
#[derive(Clone, Debug)]
pub struct Sample {
    pub tenant_id: Uuid,
    pub teammate_id: Uuid,
    pub assistant_id: Uuid,
    pub knowledge_base_id: Uuid,
    pub document_id: Uuid,
    pub file_name: String,
    pub chunk_count: i64,
}

pub async fn newest_completed(db: &Db) -> Result<Option<Sample>, sqlx::Error> {
    type Row = (Uuid, Uuid, Uuid, Uuid, Uuid, String, i64);
    let row: Option<Row> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT d.tenant_id, a.teammate_id, a.id AS assistant_id, d.knowledge_base_id, \
             d.id AS document_id, d.file_name, d.chunk_count FROM documents d \
             JOIN knowledge_bases kb ON kb.id = d.knowledge_base_id AND kb.tenant_id = d.tenant_id \
             JOIN assistants a ON a.id = kb.assistant_id AND a.tenant_id = kb.tenant_id \
             WHERE d.processed_status = 'completed' AND d.chunk_count > 0 \
             ORDER BY d.updated_at DESC, d.id LIMIT 1",
        )
        .fetch_optional(pool)
        .await
    })?;
    Ok(row.map(
        |(
            tenant_id,
            teammate_id,
            assistant_id,
            knowledge_base_id,
            document_id,
            file_name,
            chunk_count,
        )| Sample {
            tenant_id,
            teammate_id,
            assistant_id,
            knowledge_base_id,
            document_id,
            file_name,
            chunk_count,
        },
    ))
}
