//! What every handler can reach.

use std::ops::Deref;
use std::sync::Arc;

use crate::cache::Cache;
use crate::config::Config;
use crate::db::Db;
use crate::jwt::JwtKeys;
use crate::metrics::Metrics;
use crate::rag::Rag;
use crate::ratelimit::RateLimiter;
use crate::storage::Storage;
use crate::tenancy::TenantScope;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub jwt: JwtKeys,
    pub metrics: Arc<Metrics>,
    pub storage: Storage,
    pub limiter: Arc<dyn RateLimiter>,
    pub cache: Arc<dyn Cache>,
    /// The pipeline (it shares the database, storage, metrics and cache above).
    pub rag: Rag,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl AppState {
    /// Called by every write inside a tenant once it succeeded: what was cached about the tenant
    /// is invalidated (see `crate::cache`).
    pub async fn changed(&self, scope: &TenantScope) {
        crate::cache::invalidate(self.cache.as_ref(), scope.tenant_id()).await;
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
