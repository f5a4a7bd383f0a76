//! The retrieval-augmented generation pipeline: extract → chunk → embed → store → retrieve → answer.
//!
//! Outside services sit behind small traits ([`embed::Embedder`], [`vector::VectorStore`]), each
//! with an embedded default that needs no network.

pub mod answer;
pub mod chroma;
pub mod chunk;
pub mod embed;
pub mod extract;
pub mod ingest;
pub mod pipeline;
pub mod providers;
pub mod query;
pub mod vector;
pub mod worker;

use std::sync::Arc;

use crate::cache::Cache;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::provider::ProviderError;
use crate::storage::Storage;

/// What the pipeline reaches: the database, the stored files, the providers, the metadata cache
/// and the queue's wake-up. Cheap to clone (every part is shared).
#[derive(Clone)]
pub struct Rag {
    pub config: Arc<Config>,
    pub db: Db,
    pub storage: Storage,
    pub metrics: Arc<Metrics>,
    pub cache: Arc<dyn Cache>,
    pub embedder: Arc<dyn embed::Embedder>,
    pub vectors: Arc<dyn vector::VectorStore>,
    /// `None`: answers are extractive.
    pub llm: Option<Arc<dyn providers::Llm>>,
    /// Wakes the worker when a document is queued.
    pub queue: Arc<tokio::sync::Notify>,
}

/// Why a pipeline call failed (the API maps it to a status).
#[derive(Debug)]
pub enum RagError {
    /// The named resource (`"Assistant"`, `"Teammate"`) does not exist in the tenant.
    NotFound(&'static str),
    /// The teammate has no assistant to answer.
    NoAssistants,
    /// An outside provider (`what`: "embeddings", "vector store", "LLM") failed.
    Provider {
        what: &'static str,
        error: ProviderError,
    },
    /// The embedding provider answered with no vector.
    NothingEmbedded,
    Db(sqlx::Error),
    Internal(anyhow::Error),
}

impl RagError {
    /// A provider failure, logged here (once, where it happens).
    pub fn provider(what: &'static str, error: ProviderError) -> Self {
        tracing::error!(provider = what, error = %error, "provider failure");
        RagError::Provider { what, error }
    }
}

impl From<sqlx::Error> for RagError {
    fn from(e: sqlx::Error) -> Self {
        RagError::Db(e)
    }
}

impl std::fmt::Display for RagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RagError::NotFound(what) => write!(f, "{what} not found"),
            RagError::NoAssistants => write!(f, "the teammate has no assistants to answer"),
            RagError::Provider { what, error } => write!(f, "the {what} provider: {error}"),
            RagError::NothingEmbedded => write!(f, "the embedding provider returned nothing"),
            RagError::Db(e) => write!(f, "database: {e}"),
            RagError::Internal(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RagError {}
