//! A small cache for hot metadata (a teammate with its assistants and instructions, read on every
//! query): Redis when `REDIS_URL` is set (shared by all replicas), in process otherwise.
//!
//! Reads go through one cache-aside helper, [`get_or_load`], which counts every lookup (hit, miss,
//! error) in the cache's counter: `cache_lookups_total` (teammate metadata, read by queries),
//! `tenant_cache_lookups_total` (the tenant) and `resource_cache_lookups_total` (workspaces,
//! teammates, assistants and documents read by id; a document only once its processing settled,
//! and the pipeline invalidates when it claims and finishes one).
//!
//! Invalidation is by generation: every successful write inside a tenant calls [`invalidate`]
//! (in the write paths of the API), which bumps the tenant's generation, and keys include it, so
//! nothing written before a change is ever read after it (with Redis, on every replica; with
//! the in-process cache, on this replica, and elsewhere after at most the TTL). Cache failures
//! fall back to the database.
//!
//! A database replaced behind the API (a restore) invalidates nothing by itself: the operator
//! gives the API pods that come back after a restore a new `CACHE_NAMESPACE`, which prefixes
//! every Redis key, so the entries of before are never read (they expire after the TTL).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use uuid::Uuid;

use crate::provider::{BoxFut, ProviderError, redis_error};

pub const TTL: Duration = Duration::from_secs(60);

pub trait Cache: Send + Sync {
    fn get<'a>(&'a self, key: &'a str) -> BoxFut<'a, Result<Option<String>, ProviderError>>;
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFut<'a, Result<(), ProviderError>>;
    /// Increments a counter (created at 0) and returns the new value.
    fn incr<'a>(&'a self, key: &'a str) -> BoxFut<'a, Result<i64, ProviderError>>;
    /// The tenant's current generation and the entry cached under `what` in it: two lookups,
    /// which a remote cache does in one round trip.
    fn get_current<'a>(
        &'a self,
        tenant_id: Uuid,
        what: &'a str,
    ) -> BoxFut<'a, Result<(i64, Option<String>), ProviderError>> {
        Box::pin(async move {
            let generation = generation(self, tenant_id).await?;
            let entry = self.get(&key(tenant_id, generation, what)).await?;
            Ok((generation, entry))
        })
    }
}

fn generation_key(tenant_id: Uuid) -> String {
    format!("oyl:cache:{tenant_id}:generation")
}

/// The tenant's current generation (0 when never bumped).
pub async fn generation<C: Cache + ?Sized>(
    cache: &C,
    tenant_id: Uuid,
) -> Result<i64, ProviderError> {
    Ok(cache
        .get(&generation_key(tenant_id))
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Invalidates everything cached for the tenant.
pub async fn bump(cache: &dyn Cache, tenant_id: Uuid) -> Result<(), ProviderError> {
    cache.incr(&generation_key(tenant_id)).await.map(|_| ())
}

pub fn key(tenant_id: Uuid, generation: i64, what: &str) -> String {
    let (before, after) = key_parts(tenant_id, what);
    format!("{before}{generation}{after}")
}

/// An entry's key without its generation: the parts before and after it (`GET_CURRENT` puts the
/// generation between them in Redis).
fn key_parts(tenant_id: Uuid, what: &str) -> (String, String) {
    (format!("oyl:cache:{tenant_id}:"), format!(":{what}"))
}

/// Invalidates everything cached for the tenant after a write; a failure is logged (entries then
/// expire after the TTL).
pub async fn invalidate(cache: &dyn Cache, tenant_id: Uuid) {
    if let Err(e) = bump(cache, tenant_id).await {
        tracing::warn!(error = %e, "could not invalidate the cache");
    }
}

/// A value kept in the cache as text.
pub trait Cached: Sized {
    fn encode(&self) -> Option<String>;
    fn decode(text: String) -> Option<Self>;
}

/// Text kept as it is, e.g. a resource's JSON: a hit is served without parsing it.
impl Cached for String {
    fn encode(&self) -> Option<String> {
        Some(self.clone())
    }
    fn decode(text: String) -> Option<Self> {
        Some(text)
    }
}

/// A resource's JSON, served as cached (a hit is neither parsed nor serialised), and kept only
/// when `keep` (e.g. a document once its processing settled: the worker changes it otherwise).
pub struct CachedJson {
    pub text: String,
    pub keep: bool,
}

impl Cached for CachedJson {
    fn encode(&self) -> Option<String> {
        self.keep.then(|| self.text.clone())
    }
    fn decode(text: String) -> Option<Self> {
        Some(CachedJson { text, keep: true })
    }
}

/// Cache-aside for a tenant's metadata: the value cached under `what` in the tenant's current
/// generation, or else `load`'s (stored for [`TTL`] when there is one). Every lookup is counted
/// in `lookups` by outcome (hit, miss, error); a failing cache, or an entry that does not decode,
/// falls back to `load`.
pub async fn get_or_load<V, E, F, Fut>(
    cache: &dyn Cache,
    lookups: &prometheus::IntCounterVec,
    tenant_id: Uuid,
    what: &str,
    load: F,
) -> Result<Option<V>, E>
where
    V: Cached,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<V>, E>>,
{
    let count = |outcome: &str| lookups.with_label_values(&[outcome]).inc();
    let key = match cache.get_current(tenant_id, what).await {
        Ok((generation, entry)) => {
            match entry.map(V::decode) {
                Some(Some(value)) => {
                    count("hit");
                    return Ok(Some(value));
                }
                Some(None) => count("error"),
                None => count("miss"),
            }
            Some(key(tenant_id, generation, what))
        }
        Err(e) => {
            count("error");
            tracing::warn!(error = %e, "cache unavailable: reading the database");
            None
        }
    };
    let Some(value) = load().await? else {
        return Ok(None);
    };
    if let Some(key) = key
        && let Some(text) = value.encode()
        && let Err(e) = cache.set(&key, text, TTL).await
    {
        tracing::warn!(error = %e, "could not fill the cache");
    }
    Ok(Some(value))
}

#[derive(Default)]
pub struct InMemoryCache {
    entries: Mutex<HashMap<String, (String, Option<Instant>)>>,
}

impl Cache for InMemoryCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFut<'a, Result<Option<String>, ProviderError>> {
        Box::pin(async move {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            Ok(entries
                .get(key)
                .filter(|(_, expiry)| expiry.is_none_or(|e| e > Instant::now()))
                .map(|(v, _)| v.clone()))
        })
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() > 50_000 {
                let now = Instant::now();
                entries.retain(|_, (_, expiry)| expiry.is_none_or(|e| e > now));
            }
            entries.insert(key.to_string(), (value, Some(Instant::now() + ttl)));
            Ok(())
        })
    }
    fn incr<'a>(&'a self, key: &'a str) -> BoxFut<'a, Result<i64, ProviderError>> {
        Box::pin(async move {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let next = entries
                .get(key)
                .and_then(|(v, _)| v.parse::<i64>().ok())
                .unwrap_or(0)
                + 1;
            entries.insert(key.to_string(), (next.to_string(), None));
            Ok(next)
        })
    }
}

pub struct RedisCache {
    connection: ConnectionManager,
    /// Put before every key (`CACHE_NAMESPACE`, then `/`), so that a server given another
    /// namespace (after a restore) reads nothing cached before.
    prefix: String,
    /// [`Cache::get_current`] in one round trip: the generation, then the entry in it.
    current: redis::Script,
}

/// KEYS[1]: the tenant's generation key; ARGV: the entry key's parts before and after the
/// generation (see [`key`]). Returns {generation, entry or nil} (`false` is Redis's nil: a Lua
/// `nil` would end the array).
const GET_CURRENT: &str = r"
local generation = redis.call('GET', KEYS[1]) or '0'
local entry = redis.call('GET', ARGV[1] .. generation .. ARGV[2])
return {generation, entry or false}
";

impl RedisCache {
    pub fn new(url: &str, timeout: Duration, namespace: &str) -> Result<RedisCache, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid REDIS_URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("redis: {e}"))?;
        Ok(RedisCache {
            connection,
            prefix: if namespace.is_empty() {
                String::new()
            } else {
                format!("{namespace}/")
            },
            current: redis::Script::new(GET_CURRENT),
        })
    }
}

impl RedisCache {
    /// `key` in this server's namespace: borrowed as it is without one (the default), so the
    /// prefix costs nothing on the hot path then.
    fn key<'k>(&self, key: &'k str) -> std::borrow::Cow<'k, str> {
        if self.prefix.is_empty() {
            std::borrow::Cow::Borrowed(key)
        } else {
            std::borrow::Cow::Owned(format!("{}{key}", self.prefix))
        }
    }
}

impl Cache for RedisCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFut<'a, Result<Option<String>, ProviderError>> {
        Box::pin(async move {
            let mut c = self.connection.clone();
            redis::cmd("GET")
                .arg(&*self.key(key))
                .query_async(&mut c)
                .await
                .map_err(redis_error)
        })
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let mut c = self.connection.clone();
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            redis::cmd("SET")
                .arg(&*self.key(key))
                .arg(value)
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut c)
                .await
                .map_err(redis_error)
        })
    }
    fn get_current<'a>(
        &'a self,
        tenant_id: Uuid,
        what: &'a str,
    ) -> BoxFut<'a, Result<(i64, Option<String>), ProviderError>> {
        Box::pin(async move {
            let mut c = self.connection.clone();
            let (before, after) = key_parts(tenant_id, what);
            let (generation, entry): (String, Option<String>) = self
                .current
                .key(&*self.key(&generation_key(tenant_id)))
                .arg(&*self.key(&before))
                .arg(after)
                .invoke_async(&mut c)
                .await
                .map_err(redis_error)?;
            let generation = generation.parse().map_err(|_| {
                ProviderError::Unavailable(format!("redis: generation {generation:?}"))
            })?;
            Ok((generation, entry))
        })
    }
    fn incr<'a>(&'a self, key: &'a str) -> BoxFut<'a, Result<i64, ProviderError>> {
        Box::pin(async move {
            let mut c = self.connection.clone();
            redis::cmd("INCR")
                .arg(&*self.key(key))
                .query_async(&mut c)
                .await
                .map_err(redis_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generations_invalidate_and_entries_expire() {
        let cache = InMemoryCache::default();
        let tenant = Uuid::new_v4();
        assert_eq!(generation(&cache, tenant).await.unwrap(), 0);
        let k0 = key(tenant, 0, "x");
        cache.set(&k0, "v".into(), TTL).await.unwrap();
        assert_eq!(cache.get(&k0).await.unwrap().as_deref(), Some("v"));
        bump(&cache, tenant).await.unwrap();
        assert_eq!(generation(&cache, tenant).await.unwrap(), 1);
        assert_eq!(cache.get(&key(tenant, 1, "x")).await.unwrap(), None);
        cache
            .set("expired", "v".into(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(cache.get("expired").await.unwrap(), None);
    }
}
