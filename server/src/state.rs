//! What every handler can reach.

use std::ops::Deref;
use std::sync::Arc;

use crate::cache::Cache;
use crate::config::Config;
use crate::db::Db;
use crate::jwt::JwtKeys;
use crate::metrics::Metrics;
use crate::rag::embed::Embedder;
use crate::rag::providers::Llm;
use crate::rag::vector::VectorStore;
use crate::ratelimit::RateLimiter;
use crate::storage::Storage;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub jwt: JwtKeys,
    pub metrics: Metrics,
    pub storage: Storage,
    pub embedder: Arc<dyn Embedder>,
    pub vectors: Arc<dyn VectorStore>,
    /// Wakes the worker when a document is queued.
    pub queue: Arc<tokio::sync::Notify>,
    pub limiter: Arc<dyn RateLimiter>,
    /// `None`: answers are extractive.
    pub llm: Option<Arc<dyn Llm>>,
    pub cache: Arc<dyn Cache>,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
