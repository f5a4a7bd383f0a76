//! Per-tenant rate limits (GCRA): in Redis when `REDIS_URL` is set, so every replica shares one
//! budget, and in process otherwise. A failing Redis never blocks traffic: the check fails open
//! (logged and counted), and `/readyz` reports it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::rag::{BoxFut, ProviderError};

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

fn redis_error(e: redis::RedisError) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(e.to_string())
    } else {
        ProviderError::Unavailable(e.to_string())
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
