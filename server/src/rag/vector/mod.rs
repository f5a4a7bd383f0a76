//! Vector stores: one trait ([`VectorStore`]), and the embedded store (chunks and their
//! embeddings in the application database, searched by brute-force cosine similarity within one
//! knowledge base), split by concern:
//!
//! * [`embedded`]: the store itself (the database reads and writes);
//! * [`index`]: one knowledge base's embeddings in memory, scored in blocks;
//! * [`lru`]: the in-memory index of many knowledge bases, bounded by bytes.
//!
//! Every call is tenant-scoped.

use uuid::Uuid;

use crate::provider::{BoxFut, ProviderError};
use crate::tenancy::TenantScope;

pub mod embedded;
pub mod index;
pub mod lru;

pub use embedded::DbVectorStore;

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
    /// A document's chunks as stored, as (chunk index, text), in index order: what the smoke test
    /// after a restore compares with the document's `chunk_count`.
    fn document_chunks<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        document_id: Uuid,
    ) -> BoxFut<'a, Result<Vec<(i32, String)>, ProviderError>>;
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

#[derive(Clone, Debug)]
pub struct ScoredChunk {
    pub document_id: Uuid,
    pub file_name: String,
    pub chunk_index: i32,
    pub content: String,
    pub score: f32,
}

/// Embeddings as stored: little-endian `f32`s.
pub(crate) fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The ranking of search results, the same with and without the in-memory index: best score
/// first, then lower chunk index, then document id (so ties never depend on row order).
pub(crate) fn rank(a: (f32, i32, Uuid), b: (f32, i32, Uuid)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
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
