//! What every outside provider (embeddings, vector store, LLM, cache, rate limiter) has in common:
//! object-safe futures and one failure type.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the provider traits stay object-safe (`Arc<dyn Embedder>`).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failure of an outside provider (embeddings, vector store, LLM, cache, rate limiter).
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

/// A Redis failure as a provider failure (shared by the Redis cache and the Redis rate limiter).
pub fn redis_error(e: redis::RedisError) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(e.to_string())
    } else {
        ProviderError::Unavailable(e.to_string())
    }
}
