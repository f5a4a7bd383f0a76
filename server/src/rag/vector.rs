//! Vector stores: one trait, and the embedded store (chunks and their embeddings in the
//! application database, searched by brute-force cosine similarity within one knowledge base).
//! Every call is tenant-scoped.

use uuid::Uuid;

use super::{BoxFut, ProviderError};
use crate::auth::TenantScope;
use crate::db::{Db, new_id, now};
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
    /// Per (tenant, knowledge base): the embeddings of its completed documents, normalised, in
    /// one matrix, with the version of the knowledge base they were read at.
    index: std::sync::Mutex<std::collections::HashMap<(Uuid, Uuid), Arc<KbIndex>>>,
}

impl DbVectorStore {
    pub fn new(db: Db) -> Self {
        DbVectorStore {
            db,
            index: Default::default(),
        }
    }
}

use std::sync::Arc;

/// (completed documents, their chunks, the latest change among them): changes whenever a
/// document is completed, re-processed, deleted or renamed, by this process or any other.
type KbVersion = (i64, i64, Option<String>);

struct KbIndex {
    version: KbVersion,
    ids: Vec<Uuid>,
    chunk_index: Vec<i32>,
    dim: usize,
    vectors: Vec<f32>,
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
            search(self, scope, knowledge_base_id, query, k)
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

#[cfg(test)]
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

/// The `k` chunks of a knowledge base most similar to `query`: a cheap version query on the
/// documents table, the in-memory matrix of the knowledge base (re-read from the database only
/// when the version changed), then the text of the `k` best chunks only.
async fn search(
    store: &DbVectorStore,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
    query: &[f32],
    k: usize,
) -> Result<Vec<ScoredChunk>, sqlx::Error> {
    let db = &store.db;
    let version: KbVersion = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(chunk_count), 0) AS BIGINT), CAST(MAX(updated_at) AS TEXT) FROM documents \
             WHERE knowledge_base_id = $1 AND tenant_id = $2 AND processed_status = 'completed'",
        )
        .bind(knowledge_base_id)
        .bind(scope.tenant_id())
        .fetch_one(pool)
        .await
    })?;
    let key = (scope.tenant_id(), knowledge_base_id);
    let cached = store
        .index
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .filter(|i| i.version == version)
        .cloned();
    let index = match cached {
        Some(index) => index,
        None => {
            let rows: Vec<(Uuid, i32, Vec<u8>)> = with_pool!(db, pool => {
                sqlx::query_as(
                    "SELECT c.id, c.chunk_index, c.embedding FROM chunks c \
                     JOIN documents d ON d.id = c.document_id \
                     WHERE c.knowledge_base_id = $1 AND c.tenant_id = $2 AND d.processed_status = 'completed'",
                )
                .bind(knowledge_base_id)
                .bind(scope.tenant_id())
                .fetch_all(pool)
                .await
            })?;
            let dim = query.len();
            let mut index = KbIndex {
                version,
                ids: Vec::with_capacity(rows.len()),
                chunk_index: Vec::with_capacity(rows.len()),
                dim,
                vectors: Vec::with_capacity(rows.len() * dim),
            };
            for (id, chunk_index, bytes) in rows {
                if bytes.len() != dim * 4 {
                    continue;
                }
                let start = index.vectors.len();
                index.vectors.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                crate::rag::embed::normalise(&mut index.vectors[start..]);
                index.ids.push(id);
                index.chunk_index.push(chunk_index);
            }
            let index = Arc::new(index);
            store
                .index
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, index.clone());
            index
        }
    };
    let query_norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    if query_norm == 0.0 || index.dim != query.len() {
        return Ok(Vec::new());
    }
    let mut scored: Vec<(f32, i32, usize)> = index
        .vectors
        .chunks_exact(index.dim)
        .enumerate()
        .map(|(i, v)| {
            let dot: f32 = v.iter().zip(query).map(|(a, b)| a * b).sum();
            (dot / query_norm, index.chunk_index[i], i)
        })
        .collect();
    let order =
        |a: &(f32, i32, usize), b: &(f32, i32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if scored.len() > k && k > 0 {
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
    }
    scored.sort_by(order);
    scored.truncate(k);
    if scored.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..scored.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT c.id, c.document_id, d.file_name, c.chunk_index, c.content FROM chunks c \
         JOIN documents d ON d.id = c.document_id WHERE c.tenant_id = $1 AND c.id IN ({})",
        placeholders.join(", ")
    );
    let texts: Vec<(Uuid, Uuid, String, i32, String)> = with_pool!(db, pool => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(scope.tenant_id());
        for (_, _, i) in &scored {
            q = q.bind(index.ids[*i]);
        }
        q.fetch_all(pool).await
    })?;
    Ok(scored
        .iter()
        .filter_map(|(score, _, i)| {
            let (_, document_id, file_name, chunk_index, content) =
                texts.iter().find(|t| t.0 == index.ids[*i])?.clone();
            Some(ScoredChunk {
                document_id,
                file_name,
                chunk_index,
                content,
                score: *score,
            })
        })
        .collect())
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
