//! The embedded store: chunks and their embeddings in the application database.

use std::sync::Arc;

use uuid::Uuid;

use super::index::{KbIndex, KbVersion};
use super::lru::IndexCache;
use super::{ScoredChunk, VectorStore, from_bytes, rank, to_bytes};
use crate::db::{Db, new_id, now};
use crate::provider::{BoxFut, ProviderError};
use crate::rag::embed::cosine;
use crate::tenancy::TenantScope;
use crate::with_pool;

/// The embedded store. Rows cascade with their documents, so the delete calls only drop what
/// this process holds in memory.
///
/// Searches go through an in-memory index: per (tenant, knowledge base), the embeddings of its
/// completed documents in one matrix, with the version of the knowledge base they were read at
/// (see [`KbVersion`]). Every search first reads the version from the database, so changes made
/// by any process (`oyl-server worker`, other replicas) are seen at once; the matrix is re-read
/// only when the version changed. The index is bounded by bytes (least recently used knowledge
/// bases are evicted first); a limit of 0 disables it, and every search scans the database.
pub struct DbVectorStore {
    db: Db,
    /// `None`: no in-memory index.
    index: Option<IndexCache>,
}

impl DbVectorStore {
    /// `max_index_bytes`: the memory the in-memory index may use (`VECTOR_CACHE_MAX_BYTES`);
    /// 0 disables it.
    pub fn new(db: Db, max_index_bytes: usize) -> Self {
        DbVectorStore {
            db,
            index: (max_index_bytes > 0).then(|| IndexCache::new(max_index_bytes)),
        }
    }

    /// The knowledge bases held in memory, as (tenant, knowledge base), least recently used first.
    pub fn cached_knowledge_bases(&self) -> Vec<(Uuid, Uuid)> {
        self.index
            .as_ref()
            .map(|c| c.lock().order.values().copied().collect())
            .unwrap_or_default()
    }

    /// The bytes the in-memory index holds now.
    pub fn cached_bytes(&self) -> usize {
        self.index.as_ref().map_or(0, |c| c.lock().bytes)
    }

    fn forget(&self, matches: impl Fn(&super::lru::Key) -> bool) {
        if let Some(cache) = &self.index {
            cache.lock().remove_where(matches);
        }
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
            match &self.index {
                Some(cache) => {
                    search_indexed(&self.db, cache, scope, knowledge_base_id, query, k).await
                }
                None => scan(&self.db, scope, knowledge_base_id, query, k).await,
            }
            .map_err(db_error)
        })
    }
    // The rows go with their documents (cascades); the version check would notice, but the memory
    // can be given back now.
    fn delete_document<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        _: Uuid,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        self.forget(|k| *k == (scope.tenant_id(), knowledge_base_id));
        Box::pin(async { Ok(()) })
    }
    fn document_chunks<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        document_id: Uuid,
    ) -> BoxFut<'a, Result<Vec<(i32, String)>, ProviderError>> {
        Box::pin(async move {
            with_pool!(&self.db, pool => {
                sqlx::query_as(
                    "SELECT chunk_index, content FROM chunks WHERE tenant_id = $1 \
                     AND knowledge_base_id = $2 AND document_id = $3 ORDER BY chunk_index",
                )
                .bind(scope.tenant_id())
                .bind(knowledge_base_id)
                .bind(document_id)
                .fetch_all(pool)
                .await
            })
            .map_err(db_error)
        })
    }
    fn delete_knowledge_base<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        self.forget(|k| *k == (scope.tenant_id(), knowledge_base_id));
        Box::pin(async { Ok(()) })
    }
    fn delete_tenant<'a>(
        &'a self,
        scope: &'a TenantScope,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        self.forget(|k| k.0 == scope.tenant_id());
        Box::pin(async { Ok(()) })
    }
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

/// The `k` chunks of a knowledge base most similar to `query`, by reading every chunk of the
/// knowledge base (the path without the in-memory index).
async fn scan(
    db: &Db,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
    query: &[f32],
    k: usize,
) -> Result<Vec<ScoredChunk>, sqlx::Error> {
    let rows: Vec<ChunkRow> = with_pool!(db, pool => {
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
    Ok(best(query, rows, k))
}

/// A chunk as the searches read it: document, file name, index, text and stored embedding.
type ChunkRow = (Uuid, String, i32, String, Vec<u8>);

/// The `k` of `rows` most similar to `query`, scored exactly by cosine from their stored
/// embeddings (the scan scores every chunk so, the index its candidates), best first.
fn best(query: &[f32], rows: Vec<ChunkRow>, k: usize) -> Vec<ScoredChunk> {
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
        rank(
            (a.score, a.chunk_index, a.document_id),
            (b.score, b.chunk_index, b.document_id),
        )
    });
    scored.truncate(k);
    scored
}

/// The `k` chunks of a knowledge base most similar to `query`: a cheap version query on the
/// documents table, the in-memory matrix of the knowledge base (re-read from the database only
/// when the version changed), then the text of the `k` best chunks only.
async fn search_indexed(
    db: &Db,
    cache: &IndexCache,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
    query: &[f32],
    k: usize,
) -> Result<Vec<ScoredChunk>, sqlx::Error> {
    if k == 0 {
        return Ok(Vec::new());
    }
    if query.is_empty() {
        return scan(db, scope, knowledge_base_id, query, k).await;
    }
    let key = (scope.tenant_id(), knowledge_base_id);
    // Read before the matrix: an index is never labelled with a version newer than its content.
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
    let dim = query.len();
    let index = match cache.get(&key, &version, dim) {
        Some(index) => index,
        None => {
            let gate = cache.gate(key);
            let _loading = gate.gate.lock().await;
            match cache.get(&key, &version, dim) {
                Some(index) => index,
                None => {
                    let index = Arc::new(load(db, scope, knowledge_base_id, version, dim).await?);
                    cache.lock().insert(key, index.clone(), cache.max_bytes);
                    index
                }
            }
        }
    };
    let candidates = index.candidates(query, candidates_for(k));
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..candidates.len())
        .map(|i| format!("${}", i + 2))
        .collect();
    // CROSS JOIN: SQLite then takes the chunks by id first, whatever it estimates; with a plain
    // JOIN and tens of ids it walks every completed document's chunks instead (a scan, 300 ms at
    // 100 000 chunks). PostgreSQL plans both the same.
    let sql = format!(
        "SELECT c.document_id, d.file_name, c.chunk_index, c.content, c.embedding FROM chunks c \
         CROSS JOIN documents d \
         WHERE d.id = c.document_id AND c.tenant_id = $1 AND d.processed_status = 'completed' \
         AND c.id IN ({})",
        placeholders.join(", ")
    );
    let rows: Vec<ChunkRow> = with_pool!(db, pool => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(scope.tenant_id());
        for i in &candidates {
            q = q.bind(index.rows[*i].chunk_id);
        }
        q.fetch_all(pool).await
    })?;
    if rows.len() < candidates.len() {
        // Chunks replaced or removed without the version showing it (e.g. a document completed
        // and deleted again while the index was read): read the truth, and the index again on
        // the next search.
        cache.lock().remove(&key);
        return scan(db, scope, knowledge_base_id, query, k).await;
    }
    // The candidates scored exactly, as the scan scores every chunk.
    Ok(best(query, rows, k))
}

/// How many candidates the index proposes for the `k` best: enough that the exact top `k` is
/// among them (recall@5 with 64 candidates is 1.0 in the index's tests and the benchmark), few
/// enough that reading their embeddings stays cheap.
fn candidates_for(k: usize) -> usize {
    (k * 8).max(64)
}

/// Reads a knowledge base's embeddings (its completed documents') into a new index.
async fn load(
    db: &Db,
    scope: &TenantScope,
    knowledge_base_id: Uuid,
    version: KbVersion,
    dim: usize,
) -> Result<KbIndex, sqlx::Error> {
    let rows: Vec<(Uuid, Uuid, i32, Vec<u8>)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT c.id, c.document_id, c.chunk_index, c.embedding FROM chunks c \
             JOIN documents d ON d.id = c.document_id \
             WHERE c.knowledge_base_id = $1 AND c.tenant_id = $2 AND d.processed_status = 'completed'",
        )
        .bind(knowledge_base_id)
        .bind(scope.tenant_id())
        .fetch_all(pool)
        .await
    })?;
    // Decoding 10 000 embeddings takes milliseconds: off the async threads.
    tokio::task::spawn_blocking(move || KbIndex::build(version, dim, rows))
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("building the vector index failed: {e}")))
}
