//! Vector stores: one trait, and the embedded store (chunks and their embeddings in the
//! application database, searched by brute-force cosine similarity within one knowledge base).
//! Every call is tenant-scoped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::db::{Db, new_id, now};
use crate::provider::{BoxFut, ProviderError};
use crate::rag::embed::cosine;
use crate::tenancy::TenantScope;
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

    fn forget(&self, matches: impl Fn(&Key) -> bool) {
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

/// The ranking of search results, the same with and without the in-memory index: best score
/// first, then lower chunk index, then document id (so ties never depend on row order).
fn rank(a: (f32, i32, Uuid), b: (f32, i32, Uuid)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
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
        rank(
            (a.score, a.chunk_index, a.document_id),
            (b.score, b.chunk_index, b.document_id),
        )
    });
    scored.truncate(k);
    Ok(scored)
}

type Key = (Uuid, Uuid);

/// (completed documents, their chunks, the latest change among them): changes whenever a
/// document is completed, re-processed, deleted or renamed, by this process or any other.
type KbVersion = (i64, i64, Option<String>);

/// Rows stored side by side in [`KbIndex::blocks`].
const LANES: usize = 8;

/// One knowledge base in memory: its chunks' embeddings as read from the database and what is
/// needed to score and find them again. The embeddings are stored `LANES` rows side by side
/// (`blocks[b * dim + j][lane]` is value `j` of row `b * LANES + lane`, missing rows are zeros),
/// so the dot products of `LANES` rows advance together, one vector instruction per value,
/// while each row's sum still adds its products in order (the same scores, to the bit, as
/// [`cosine`]): a single sum is bound by the latency of its additions, and scoring was 65 % of
/// a query's time over 10 000 chunks.
struct KbIndex {
    version: KbVersion,
    dim: usize,
    rows: Vec<IndexRow>,
    blocks: Vec<[f32; LANES]>,
}

struct IndexRow {
    chunk_id: Uuid,
    document_id: Uuid,
    chunk_index: i32,
    /// The embedding's L2 norm, computed exactly as [`cosine`] does; 0 for an embedding of
    /// another dimension (which [`cosine`] scores 0).
    norm: f32,
}

impl KbIndex {
    /// What the entry costs in memory (approximately: the allocations and the map's share).
    fn bytes(&self) -> usize {
        size_of::<KbIndex>()
            + 64
            + self.rows.capacity() * size_of::<IndexRow>()
            + self.blocks.capacity() * size_of::<[f32; LANES]>()
    }

    fn build(version: KbVersion, dim: usize, rows: Vec<(Uuid, Uuid, i32, Vec<u8>)>) -> KbIndex {
        let mut index = KbIndex {
            version,
            dim,
            rows: Vec::with_capacity(rows.len()),
            blocks: vec![[0.0; LANES]; rows.len().div_ceil(LANES) * dim],
        };
        for (r, (chunk_id, document_id, chunk_index, bytes)) in rows.into_iter().enumerate() {
            let norm = if bytes.len() == dim * 4 {
                let (block, lane) = (r / LANES, r % LANES);
                let mut squares = -0.0f32; // what `Sum for f32` starts from
                for (j, b) in bytes.chunks_exact(4).enumerate() {
                    let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    index.blocks[block * dim + j][lane] = x;
                    squares += x * x;
                }
                squares.sqrt()
            } else {
                0.0 // left as zeros
            };
            index.rows.push(IndexRow {
                chunk_id,
                document_id,
                chunk_index,
                norm,
            });
        }
        index
    }

    /// `query · row` for every row, each summed in order from -0.0 as `Sum for f32` does.
    fn dots(&self, query: &[f32]) -> Vec<f32> {
        let dim = self.dim;
        if dim == 0 || query.len() != dim {
            return vec![0.0; self.rows.len()];
        }
        let mut out = Vec::with_capacity(self.blocks.len() / dim * LANES);
        for block in self.blocks.chunks_exact(dim) {
            let mut acc = [-0.0f32; LANES];
            for (q, values) in query.iter().zip(block) {
                for (a, v) in acc.iter_mut().zip(values) {
                    *a += q * v;
                }
            }
            out.extend_from_slice(&acc);
        }
        out.truncate(self.rows.len());
        out
    }

    /// The positions of the `k` best rows for `query`, best first, with their scores: the same
    /// scores (bit for bit) and order as [`scan`].
    fn top_k(&self, query: &[f32], k: usize) -> Vec<(f32, usize)> {
        if k == 0 {
            return Vec::new();
        }
        let query_norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        let mut scored: Vec<(f32, usize)> = self
            .dots(query)
            .into_iter()
            .zip(&self.rows)
            .enumerate()
            .map(|(i, (dot, row))| {
                let score = if query_norm == 0.0 || row.norm == 0.0 {
                    0.0
                } else {
                    dot / (query_norm * row.norm)
                };
                (score, i)
            })
            .collect();
        let key = |&(score, i): &(f32, usize)| {
            let row = &self.rows[i];
            (score, row.chunk_index, row.document_id)
        };
        let order = |a: &(f32, usize), b: &(f32, usize)| rank(key(a), key(b));
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, order);
            scored.truncate(k);
        }
        scored.sort_by(order);
        scored
    }
}

/// The in-memory index: knowledge bases by key, least recently used evicted first once the
/// bytes go over the limit.
struct IndexCache {
    max_bytes: usize,
    lru: Mutex<Lru>,
    /// One loader per knowledge base at a time: concurrent searches on a knowledge base whose
    /// version changed wait for the first one's read instead of all reading it.
    loading: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<Key, (Arc<KbIndex>, u64)>,
    /// Last use → key.
    order: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
}

impl Lru {
    /// The entry for `key` if it is at `version` (and `dim`), marked as just used.
    fn get(&mut self, key: &Key, version: &KbVersion, dim: usize) -> Option<Arc<KbIndex>> {
        let (index, used) = self.entries.get_mut(key)?;
        if index.version != *version || index.dim != dim {
            return None;
        }
        self.tick += 1;
        self.order.remove(used);
        *used = self.tick;
        self.order.insert(self.tick, *key);
        Some(index.clone())
    }

    fn remove(&mut self, key: &Key) {
        if let Some((index, used)) = self.entries.remove(key) {
            self.order.remove(&used);
            self.bytes -= index.bytes();
        }
    }

    fn remove_where(&mut self, matches: impl Fn(&Key) -> bool) {
        let keys: Vec<Key> = self
            .entries
            .keys()
            .filter(|k| matches(k))
            .copied()
            .collect();
        for key in keys {
            self.remove(&key);
        }
    }

    /// Keeps `index` for `key` (replacing what was there), then evicts the least recently used
    /// entries until the total fits in `max_bytes`. An index larger than the limit on its own
    /// is not kept.
    fn insert(&mut self, key: Key, index: Arc<KbIndex>, max_bytes: usize) {
        self.remove(&key);
        let size = index.bytes();
        if size > max_bytes {
            return;
        }
        while self.bytes + size > max_bytes {
            let Some((_, oldest)) = self.order.first_key_value() else {
                break;
            };
            let oldest = *oldest;
            tracing::debug!(tenant_id = %oldest.0, knowledge_base_id = %oldest.1, "vector index evicted");
            self.remove(&oldest);
        }
        self.tick += 1;
        self.order.insert(self.tick, key);
        self.entries.insert(key, (index, self.tick));
        self.bytes += size;
    }
}

impl IndexCache {
    fn new(max_bytes: usize) -> Self {
        IndexCache {
            max_bytes,
            lru: Mutex::default(),
            loading: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &Key, version: &KbVersion, dim: usize) -> Option<Arc<KbIndex>> {
        self.lock().get(key, version, dim)
    }

    /// The loader lock of `key` (dropped from the map by [`LoadGate`] when nobody uses it).
    fn gate(&self, key: Key) -> LoadGate<'_> {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        LoadGate {
            cache: self,
            key,
            gate: loading.entry(key).or_default().clone(),
        }
    }
}

struct LoadGate<'a> {
    cache: &'a IndexCache,
    key: Key,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for LoadGate<'_> {
    fn drop(&mut self) {
        let mut loading = self.cache.loading.lock().unwrap_or_else(|p| p.into_inner());
        // Clones are only made under this lock: 2 = the map's and ours, nobody else waits.
        if Arc::strong_count(&self.gate) == 2 {
            loading.remove(&self.key);
        }
    }
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
    let best = index.top_k(query, k);
    if best.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..best.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT c.id, c.document_id, d.file_name, c.chunk_index, c.content FROM chunks c \
         JOIN documents d ON d.id = c.document_id \
         WHERE c.tenant_id = $1 AND d.processed_status = 'completed' AND c.id IN ({})",
        placeholders.join(", ")
    );
    let texts: Vec<(Uuid, Uuid, String, i32, String)> = with_pool!(db, pool => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(scope.tenant_id());
        for (_, i) in &best {
            q = q.bind(index.rows[*i].chunk_id);
        }
        q.fetch_all(pool).await
    })?;
    if texts.len() < best.len() {
        // Chunks replaced or removed without the version showing it (e.g. a document completed
        // and deleted again while the index was read): read the truth, and the index again on
        // the next search.
        cache.lock().remove(&key);
        return scan(db, scope, knowledge_base_id, query, k).await;
    }
    let mut texts: HashMap<Uuid, (Uuid, String, i32, String)> = texts
        .into_iter()
        .map(|(id, document_id, file_name, chunk_index, content)| {
            (id, (document_id, file_name, chunk_index, content))
        })
        .collect();
    Ok(best
        .iter()
        .filter_map(|(score, i)| {
            let (document_id, file_name, chunk_index, content) =
                texts.remove(&index.rows[*i].chunk_id)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_through_bytes() {
        let v = vec![0.5f32, -1.25, 3.0e-7];
        assert_eq!(from_bytes(&to_bytes(&v)), v);
    }

    fn index(dim: usize, rows: &[(i32, Vec<f32>)]) -> KbIndex {
        let doc = Uuid::from_u128(7);
        KbIndex::build(
            (rows.len() as i64, 0, None),
            dim,
            rows.iter()
                .enumerate()
                .map(|(i, (chunk_index, v))| {
                    (Uuid::from_u128(i as u128), doc, *chunk_index, to_bytes(v))
                })
                .collect(),
        )
    }

    #[test]
    fn top_k_scores_exactly_as_cosine_does() {
        let rows = vec![
            (0, vec![0.1f32, 0.7, -0.3]),
            (1, vec![3.0, 1.0, 2.0]),
            (2, vec![0.0, 0.0, 0.0]),
            (3, vec![1.0, 2.0]), // another dimension: scored 0, as cosine does
            (4, vec![-0.2, 0.33, 0.9]),
            (5, vec![0.1, 0.7, -0.3]), // a tie with chunk 0: the lower chunk index first
        ];
        let idx = index(3, &rows);
        let query = [0.25f32, 0.5, -0.125];
        let got = idx.top_k(&query, 10);
        let mut want: Vec<(f32, i32)> = rows
            .iter()
            .map(|(ci, v)| (cosine(&query, v), *ci))
            .collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let got_pairs: Vec<(u32, i32)> = got
            .iter()
            .map(|(s, i)| (s.to_bits(), idx.rows[*i].chunk_index))
            .collect();
        let want_pairs: Vec<(u32, i32)> = want.iter().map(|(s, c)| (s.to_bits(), *c)).collect();
        assert_eq!(got_pairs, want_pairs);
        assert_eq!(idx.top_k(&query, 2).len(), 2);
        assert_eq!(idx.top_k(&query, 2), got[..2].to_vec());
        assert!(idx.top_k(&query, 0).is_empty());
        // A zero query scores everything 0 (then by chunk index), like cosine.
        let zero: Vec<i32> = idx
            .top_k(&[0.0, 0.0, 0.0], 3)
            .iter()
            .map(|(s, i)| {
                assert_eq!(*s, 0.0);
                idx.rows[*i].chunk_index
            })
            .collect();
        assert_eq!(zero, vec![0, 1, 2]);
    }

    #[test]
    fn scores_of_many_rows_are_bit_for_bit_those_of_cosine() {
        // Values of mixed sign and magnitude in a realistic dimension, so that any change in the
        // order of the additions shows in the last bits.
        let dim = 97;
        let value = |r: usize, j: usize| {
            let x = ((r * 7919 + j * 104_729) % 1000) as f32 / 997.0 - 0.5;
            x * if j.is_multiple_of(5) { 1000.0 } else { 0.001 }
        };
        let rows: Vec<(i32, Vec<f32>)> = (0..29)
            .map(|r| (r as i32, (0..dim).map(|j| value(r, j)).collect()))
            .collect();
        let query: Vec<f32> = (0..dim).map(|j| value(1000, j)).collect();
        let idx = index(dim, &rows);
        let got = idx.top_k(&query, rows.len());
        assert_eq!(got.len(), rows.len());
        for (score, i) in got {
            assert_eq!(
                score.to_bits(),
                cosine(&query, &rows[i].1).to_bits(),
                "row {i}"
            );
        }
    }

    #[test]
    fn the_index_is_bounded_by_bytes_least_recently_used_first() {
        let one = Arc::new(index(3, &[(0, vec![1.0, 0.0, 0.0])]));
        let size = one.bytes();
        let mut lru = Lru::default();
        let key = |n: u128| (Uuid::from_u128(1), Uuid::from_u128(n));
        let v = one.version.clone();
        lru.insert(key(1), one.clone(), size * 2);
        lru.insert(key(2), one.clone(), size * 2);
        assert!(lru.get(&key(1), &v, 3).is_some()); // 1 is now the most recent
        lru.insert(key(3), one.clone(), size * 2);
        assert!(
            lru.get(&key(2), &v, 3).is_none(),
            "2 was the least recently used"
        );
        assert!(lru.get(&key(1), &v, 3).is_some());
        assert!(lru.get(&key(3), &v, 3).is_some());
        assert_eq!(lru.bytes, size * 2);
        // Another version or dimension is a miss.
        assert!(lru.get(&key(1), &(9, 9, None), 3).is_none());
        assert!(lru.get(&key(1), &v, 4).is_none());
        // Too large on its own: not kept, and nothing else is evicted for it.
        lru.insert(key(4), one, size - 1);
        assert!(lru.get(&key(4), &v, 3).is_none());
        lru.remove_where(|k| k.1 == Uuid::from_u128(1));
        assert_eq!(lru.entries.len(), 1);
        assert_eq!(lru.order.len(), 1);
        assert_eq!(lru.bytes, size);
    }
}
