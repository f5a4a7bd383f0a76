//! Per-tenant rate limits (GCRA): in Redis when `REDIS_URL` is set, so every replica shares one
//! budget, and in process otherwise. A failing Redis never blocks traffic: the check fails open
//! (logged and counted), and `/readyz` reports it.
//!
//! A tenant has two budgets ([`Budget`]): reads (GET, HEAD) and work (everything else), so that
//! polling never uses up the budget for work. [`admit`] is the policy the API's tenant layer
//! applies after authentication.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use uuid::Uuid;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::provider::{BoxFut, ProviderError, redis_error};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub per_minute: u32,
    pub burst: u32,
}

impl Quota {
    /// Milliseconds between requests at the sustained rate.
    pub fn emission_ms(self) -> i64 {
        (60_000 / i64::from(self.per_minute.max(1))).max(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub retry_after_ms: i64,
    pub remaining: i64,
}

pub trait RateLimiter: Send + Sync {
    fn backend(&self) -> &'static str;
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
    ) -> BoxFut<'a, Result<Decision, ProviderError>>;
    /// For readiness: can the backend be reached?
    fn health(&self) -> BoxFut<'_, Result<(), ProviderError>>;
}

/// A tenant has two budgets, so that polling never uses up the budget for work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// GET and HEAD: cheap reads such as status polling.
    Reads,
    /// Everything else: uploads, queries, creates, updates, deletes.
    Work,
}

impl Budget {
    pub fn of(method: &axum::http::Method) -> Self {
        if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
            Budget::Reads
        } else {
            Budget::Work
        }
    }

    /// The limiter key of this budget of a tenant.
    pub fn key(self, tenant_id: Uuid) -> String {
        match self {
            Budget::Work => format!("tenant:{tenant_id}"),
            Budget::Reads => format!("tenant:{tenant_id}:reads"),
        }
    }

    /// The quota of this budget (`RATE_LIMIT_REQUESTS_PER_MINUTE` and `RATE_LIMIT_BURST` for
    /// work, `RATE_LIMIT_READS_PER_MINUTE` and `RATE_LIMIT_READ_BURST` for reads); `None` when
    /// it is disabled (0 per minute).
    pub fn quota(self, config: &Config) -> Option<Quota> {
        let (per_minute, burst) = match self {
            Budget::Work => (
                config.rate_limit_requests_per_minute,
                config.rate_limit_burst,
            ),
            Budget::Reads => (
                config.rate_limit_reads_per_minute,
                config.rate_limit_read_burst,
            ),
        };
        (per_minute != 0).then_some(Quota { per_minute, burst })
    }
}

/// A request the tenant's budget has no room for: retry after this many seconds (at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

/// Takes one request from the tenant's budget. A limiter failure lets the request through
/// (logged, counted); a refusal is counted.
pub async fn admit(
    limiter: &dyn RateLimiter,
    config: &Config,
    metrics: &Metrics,
    tenant_id: Uuid,
    budget: Budget,
) -> Result<(), Limited> {
    let Some(quota) = budget.quota(config) else {
        return Ok(());
    };
    match limiter.check(&budget.key(tenant_id), quota).await {
        Ok(decision) if decision.allowed => Ok(()),
        Ok(decision) => {
            metrics.rate_limited.inc();
            let retry_after_secs = u64::try_from((decision.retry_after_ms + 999) / 1000)
                .unwrap_or(1)
                .max(1);
            Err(Limited { retry_after_secs })
        }
        Err(e) => {
            metrics.rate_limiter_errors.inc();
            tracing::warn!(error = %e, backend = limiter.backend(), "rate limiter unavailable: request let through");
            Ok(())
        }
    }
}

/// The GCRA step, shared by the in-process limiter and mirrored by `gcra.lua`: given the stored
/// theoretical arrival time, the decision and the new value to store (if allowed).
pub fn gcra(now_ms: i64, stored_tat: Option<i64>, quota: Quota) -> (Decision, Option<i64>) {
    let emission = quota.emission_ms();
    let burst = i64::from(quota.burst.max(1));
    let tat = stored_tat.unwrap_or(now_ms).max(now_ms);
    let new_tat = tat + emission;
    let allow_at = new_tat - emission * burst;
    if allow_at > now_ms {
        (
            Decision {
                allowed: false,
                retry_after_ms: allow_at - now_ms,
                remaining: 0,
            },
            None,
        )
    } else {
        (
            Decision {
                allowed: true,
                retry_after_ms: 0,
                remaining: (now_ms - allow_at) / emission,
            },
            Some(new_tat),
        )
    }
}

/// One process's budget (used without Redis; replicas do not share it).
#[derive(Default)]
pub struct InMemoryLimiter {
    tats: Mutex<HashMap<String, i64>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl RateLimiter for InMemoryLimiter {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
    ) -> BoxFut<'a, Result<Decision, ProviderError>> {
        Box::pin(async move {
            let now = now_ms();
            let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
            if tats.len() > 100_000 {
                // Forget buckets that are back to full.
                tats.retain(|_, tat| *tat > now);
            }
            let (decision, new_tat) = gcra(now, tats.get(key).copied(), quota);
            if let Some(tat) = new_tat {
                tats.insert(key.to_string(), tat);
            }
            Ok(decision)
        })
    }
    fn health(&self) -> BoxFut<'_, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }
}

pub struct RedisLimiter {
    connection: ConnectionManager,
    script: redis::Script,
}

impl RedisLimiter {
    /// Connects lazily: a Redis that is down at start-up does not stop the server.
    pub fn new(url: &str, timeout: Duration) -> Result<RedisLimiter, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid REDIS_URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("redis: {e}"))?;
        Ok(RedisLimiter {
            connection,
            script: redis::Script::new(include_str!("gcra.lua")),
        })
    }
}

impl RateLimiter for RedisLimiter {
    fn backend(&self) -> &'static str {
        "redis"
    }
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
    ) -> BoxFut<'a, Result<Decision, ProviderError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let (allowed, retry_after_ms, remaining): (i64, i64, i64) = self
                .script
                .key(format!("oyl:rl:{key}"))
                .arg(quota.emission_ms())
                .arg(quota.burst.max(1))
                .invoke_async(&mut connection)
                .await
                .map_err(redis_error)?;
            Ok(Decision {
                allowed: allowed == 1,
                retry_after_ms,
                remaining,
            })
        })
    }
    fn health(&self) -> BoxFut<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map(|_| ())
                .map_err(redis_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_the_burst_then_the_sustained_rate() {
        let quota = Quota {
            per_minute: 30,
            burst: 3,
        }; // one request every 2 s, 3 at once
        let mut tat = None;
        let mut now = 1_000_000;
        for expected_remaining in [2, 1, 0] {
            let (d, new) = gcra(now, tat, quota);
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
            tat = new;
        }
        let (denied, new) = gcra(now, tat, quota);
        assert!(!denied.allowed);
        assert_eq!((denied.retry_after_ms, new), (2000, None));
        now += 1999;
        assert!(!gcra(now, tat, quota).0.allowed);
        now += 1;
        let (d, new) = gcra(now, tat, quota);
        assert!(d.allowed && d.remaining == 0);
        tat = new;
        // After a long pause the full burst is back.
        now += 60_000;
        assert_eq!(gcra(now, tat, quota).0.remaining, 2);
    }
}
