//! Vector stores: one trait, and the embedded store (chunks and their embeddings in the
//! application database, searched by brute-force cosine similarity within one knowledge base).
//! Every call is tenant-scoped.

use uuid::Uuid;

use super::{BoxFut, ProviderError};
use crate::auth::TenantScope;
use crate::db::{Db, new_id, now};
use crate::rag::embed::cosine;
use crate::with_pool;

/// Where chunk vectors live. Implementations must make [`VectorStore::replace_document`]
/// idempotent (re-processing a document never duplicates its chunks).
pub trait VectorStore: Send + Sync {
    fn name(&self) -> &'static str;
    fn replace_document<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        document_id: Uuid,
        file_name: &'a str,
        chunks: &'a [(String, Vec<f32>)],
    ) -> BoxFut<'a, Result<(), ProviderError>>;
    fn search<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        query: &'a [f32],
        k: usize,
    ) -> BoxFut<'a, Result<Vec<ScoredChunk>, ProviderError>>;
    fn delete_document<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        document_id: Uuid,
    ) -> BoxFut<'a, Result<(), ProviderError>>;
    fn delete_knowledge_base<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
    ) -> BoxFut<'a, Result<(), ProviderError>>;
    fn delete_tenant<'a>(&'a self, scope: &'a TenantScope)
    -> BoxFut<'a, Result<(), ProviderError>>;
    /// For readiness, when the store is an outside service.
    fn health(&self) -> Option<BoxFut<'_, Result<(), ProviderError>>> {
        None
    }
}

/// The embedded store. Rows cascade with their documents, so the delete calls have nothing to do.
pub struct DbVectorStore {
    db: Db,
}

impl DbVectorStore {
    pub fn new(db: Db) -> Self {
        DbVectorStore { db }
    }
}

fn db_error(e: sqlx::Error) -> ProviderError {
    ProviderError::Unavailable(format!("database: {e}"))
}

impl VectorStore for DbVectorStore {
    fn name(&self) -> &'static str {
        "embedded"
    }
    fn replace_document<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        document_id: Uuid,
        _file_name: &'a str,
        chunks: &'a [(String, Vec<f32>)],
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            replace_document_chunks(&self.db, scope, knowledge_base_id, document_id, chunks)
                .await
                .map_err(db_error)
        })
    }
    fn search<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        query: &'a [f32],
        k: usize,
    ) -> BoxFut<'a, Result<Vec<ScoredChunk>, ProviderError>> {
        Box::pin(async move {
            search(&self.db, scope, knowledge_base_id, query, k)
                .await
                .map_err(db_error)
        })
    }
    fn delete_document<'a>(
        &'a self,
        _: &'a TenantScope,
        _: Uuid,
        _: Uuid,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }
    fn delete_knowledge_base<'a>(
        &'a self,
        _: &'a TenantScope,
        _: Uuid,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }
    fn delete_tenant<'a>(&'a self, _: &'a TenantScope) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }
}

#[derive(Clone, Debug)]
pub struct ScoredChunk {
    pub document_id: Uuid,
    pub file_name: String,
    pub chunk_index: i32,
    pub content: String,
    pub score: f32,
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Replaces a document's chunks (re-processing never duplicates them).
async fn replace_document_chunks(
    db: &Db,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
    document_id: Uuid,
    chunks: &[(String, Vec<f32>)],
) -> Result<(), sqlx::Error> {
    let ts = now();
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM chunks WHERE document_id = $1 AND tenant_id = $2")
            .bind(document_id)
            .bind(scope.tenant_id())
            .execute(&mut *tx)
            .await?;
        for (index, (content, embedding)) in chunks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO chunks (id, tenant_id, knowledge_base_id, document_id, chunk_index, content, embedding, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(new_id())
            .bind(scope.tenant_id())
            .bind(knowledge_base_id)
            .bind(document_id)
            .bind(i32::try_from(index).unwrap_or(i32::MAX))
            .bind(content.as_str())
            .bind(to_bytes(embedding))
            .bind(ts)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    })
}

/// The `k` chunks of a knowledge base most similar to `query`.
async fn search(
    db: &Db,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
    query: &[f32],
    k: usize,
) -> Result<Vec<ScoredChunk>, sqlx::Error> {
    let rows: Vec<(Uuid, String, i32, String, Vec<u8>)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT c.document_id, d.file_name, c.chunk_index, c.content, c.embedding FROM chunks c \
             JOIN documents d ON d.id = c.document_id \
             WHERE c.knowledge_base_id = $1 AND c.tenant_id = $2 AND d.processed_status = 'completed'",
        )
        .bind(knowledge_base_id)
        .bind(scope.tenant_id())
        .fetch_all(pool)
        .await
    })?;
    let mut scored: Vec<ScoredChunk> = rows
        .into_iter()
        .map(
            |(document_id, file_name, chunk_index, content, embedding)| ScoredChunk {
                score: cosine(query, &from_bytes(&embedding)),
                document_id,
                file_name,
                chunk_index,
                content,
            },
        )
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.chunk_index.cmp(&b.chunk_index))
    });
    scored.truncate(k);
    Ok(scored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_through_bytes() {
        let v = vec![0.5f32, -1.25, 3.0e-7];
        assert_eq!(from_bytes(&to_bytes(&v)), v);
    }
}
