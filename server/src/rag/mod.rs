//! The retrieval-augmented generation pipeline: extract → chunk → embed → store → retrieve → answer.
//!
//! Outside services sit behind small traits ([`embed::Embedder`], [`vector::VectorStore`]), each
//! with an embedded default that needs no network.

use std::future::Future;
use std::pin::Pin;

pub mod answer;
pub mod chroma;
pub mod chunk;
pub mod embed;
pub mod extract;
pub mod pipeline;
pub mod providers;
pub mod vector;
pub mod worker;

/// A boxed future, so the provider traits stay object-safe (`Arc<dyn Embedder>`).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failure of an outside provider (embeddings, vector store, LLM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// It did not answer in time.
    Timeout(String),
    /// It could not be reached or answered with an error.
    Unavailable(String),
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderError::Timeout(m) => write!(f, "timed out: {m}"),
            ProviderError::Unavailable(m) => write!(f, "unavailable: {m}"),
        }
    }
}

impl std::error::Error for ProviderError {}
