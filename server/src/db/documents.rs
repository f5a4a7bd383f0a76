use uuid::Uuid;

use super::{Db, Page, now};
use crate::auth::TenantScope;
use crate::models::Document;
use crate::with_pool;

const COLUMNS: &str = "id, tenant_id, knowledge_base_id, file_name, file_type, content_type, size_bytes, \
                       processed_status, error, chunk_count, created_at, updated_at, storage_key";

pub struct NewDocument<'a> {
    pub id: Uuid,
    pub knowledge_base_id: Uuid,
    pub file_name: &'a str,
    pub file_type: &'a str,
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
            .bind(doc.file_type)
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

/// Moves a document to a new status (with the error when failed and the chunk count).
pub async fn set_status(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
    status: &str,
    error: Option<&str>,
    chunk_count: i64,
) -> Result<bool, sqlx::Error> {
    let result = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE documents SET processed_status = $3, error = $4, chunk_count = $5, updated_at = $6 \
             WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(scope.tenant_id())
        .bind(status)
        .bind(error)
        .bind(chunk_count)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(result > 0)
}

/// Atomically moves a `pending` (or, when `retry_failed`, `failed`) document to `processing`.
/// Returns false when someone else got it first, so no document is processed twice at once.
pub async fn claim(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
    retry_failed: bool,
) -> Result<bool, sqlx::Error> {
    let result = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE documents SET processed_status = 'processing', error = NULL, updated_at = $3 \
             WHERE id = $1 AND tenant_id = $2 AND (processed_status = 'pending' OR ($4 AND processed_status = 'failed'))",
        )
        .bind(id)
        .bind(scope.tenant_id())
        .bind(now())
        .bind(retry_failed)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(result == 1)
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
