//! Per-tenant rate limits (GCRA): in Redis when `REDIS_URL` is set, so every replica shares one
//! budget, and in process otherwise. A failing Redis never blocks traffic: the check fails open
//! (logged and counted), and `/readyz` reports it. With Redis, a replica takes tokens ahead in
//! small leases ([`Leases`]), so a busy tenant costs one Redis round trip per lease, not per
//! request, and the replicas together still never admit more than the budget.
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
    let (decision, _, new_tat) = gcra_take(now_ms, stored_tat, quota, 1);
    (decision, new_tat)
}

/// The GCRA step for up to `want` requests at once (what `gcra.lua` does): the decision, how
/// many were granted (0 when refused, else between 1 and `want`: as many as the budget has room
/// for now) and the new value to store (if any was granted). `remaining` is what is left after
/// the grant.
pub fn gcra_take(
    now_ms: i64,
    stored_tat: Option<i64>,
    quota: Quota,
    want: u32,
) -> (Decision, u32, Option<i64>) {
    let emission = quota.emission_ms();
    let burst = i64::from(quota.burst.max(1));
    let tat = stored_tat.unwrap_or(now_ms).max(now_ms);
    // Requests that fit now: each moves the arrival time on by one emission, and the budget
    // admits while it stays within `burst` emissions of now.
    let room = (now_ms - tat).div_euclid(emission) + burst;
    if room < 1 {
        let decision = Decision {
            allowed: false,
            retry_after_ms: tat + emission - emission * burst - now_ms,
            remaining: 0,
        };
        return (decision, 0, None);
    }
    let granted = room.min(i64::from(want.max(1)));
    let decision = Decision {
        allowed: true,
        retry_after_ms: 0,
        remaining: room - granted,
    };
    let granted_u32 = u32::try_from(granted).unwrap_or(1);
    (decision, granted_u32, Some(tat + granted * emission))
}

/// How long tokens taken ahead from the shared budget stay usable on this replica.
const LEASE_TTL: Duration = Duration::from_millis(500);
/// The most tokens one replica takes ahead at once.
const MAX_LEASE: u32 = 64;

/// Tokens a replica took from the shared budget ahead of its requests.
struct Lease {
    tokens: u32,
    expires: std::time::Instant,
    /// How many were asked for, and when.
    size: u32,
    taken: std::time::Instant,
}

/// A replica's leases, by budget key. Tokens are taken from the shared budget before they are
/// used, so the replicas together never admit more than the budget; a lease that expires unused
/// gives its tokens up (the budget then admits a little less, never more). A busy tenant's
/// requests thus reach Redis once per lease: the lease doubles while leases run out within half
/// their lifetime, up to a quarter of the burst (at most [`MAX_LEASE`]); otherwise it is 1.
#[derive(Default)]
pub struct Leases(Mutex<HashMap<String, Lease>>);

impl Leases {
    /// Takes a token of this replica's live lease, if it holds one: the tokens left in it.
    fn take_local(&self, key: &str) -> Option<u32> {
        let mut leases = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let lease = leases.get_mut(key)?;
        if lease.tokens == 0 || lease.expires <= std::time::Instant::now() {
            return None;
        }
        lease.tokens -= 1;
        Some(lease.tokens)
    }

    /// How many tokens to take from the shared budget now.
    fn want(&self, key: &str, quota: Quota) -> u32 {
        let cap = (quota.burst / 4).clamp(1, MAX_LEASE);
        let leases = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match leases.get(key) {
            Some(l) if l.tokens == 0 && l.taken.elapsed() < LEASE_TTL / 2 => {
                l.size.saturating_mul(2).min(cap)
            }
            _ => 1,
        }
    }

    /// Keeps `granted - 1` tokens (one is used by the request that took them), with what a live
    /// lease still holds.
    fn store(&self, key: &str, granted: u32, asked: u32) {
        let now = std::time::Instant::now();
        let mut leases = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if leases.len() > 10_000 {
            leases.retain(|_, l| l.expires > now);
        }
        let kept = leases
            .get(key)
            .filter(|l| l.expires > now)
            .map_or(0, |l| l.tokens);
        leases.insert(
            key.to_string(),
            Lease {
                tokens: kept + granted.saturating_sub(1),
                expires: now + LEASE_TTL,
                size: asked,
                taken: now,
            },
        );
    }
}

/// A check against a shared budget through this replica's leases: a token of a live lease, else
/// `take(want)` from the shared budget, which answers (granted, retry after ms, remaining).
pub async fn leased_check<F, Fut>(
    leases: &Leases,
    key: &str,
    quota: Quota,
    take: F,
) -> Result<Decision, ProviderError>
where
    F: FnOnce(u32) -> Fut,
    Fut: Future<Output = Result<(i64, i64, i64), ProviderError>>,
{
    if let Some(left) = leases.take_local(key) {
        return Ok(Decision {
            allowed: true,
            retry_after_ms: 0,
            remaining: i64::from(left),
        });
    }
    let want = leases.want(key, quota);
    let (granted, retry_after_ms, remaining) = take(want).await?;
    if granted < 1 {
        return Ok(Decision {
            allowed: false,
            retry_after_ms,
            remaining: 0,
        });
    }
    leases.store(key, u32::try_from(granted).unwrap_or(1), want);
    Ok(Decision {
        allowed: true,
        retry_after_ms: 0,
        remaining,
    })
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
    leases: Leases,
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
            leases: Leases::default(),
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
        Box::pin(leased_check(
            &self.leases,
            key,
            quota,
            move |want| async move {
                let mut connection = self.connection.clone();
                self.script
                    .key(format!("oyl:rl:{key}"))
                    .arg(quota.emission_ms())
                    .arg(quota.burst.max(1))
                    .arg(want)
                    .invoke_async(&mut connection)
                    .await
                    .map_err(redis_error)
            },
        ))
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

    #[test]
    fn gcra_grants_what_fits_of_a_batch() {
        let quota = Quota {
            per_minute: 60,
            burst: 10,
        };
        let now = 1_000_000;
        let (d, granted, tat) = gcra_take(now, None, quota, 4);
        assert_eq!((d.allowed, granted, d.remaining), (true, 4, 6));
        let (d, granted, tat) = gcra_take(now, tat, quota, 8);
        assert_eq!((d.allowed, granted, d.remaining), (true, 6, 0));
        let (d, granted, _) = gcra_take(now, tat, quota, 8);
        assert_eq!((d.allowed, granted, d.retry_after_ms), (false, 0, 1000));
        // One at a time is exactly `gcra`.
        let (one, _) = gcra(now, None, quota);
        assert_eq!(gcra_take(now, None, quota, 1).0, one);
    }

    /// Two replicas with their own leases and one shared budget (Redis, simulated with the
    /// same GCRA step): together they never admit more than the budget, and a busy tenant's
    /// requests reach the shared budget far less than once each.
    #[tokio::test]
    async fn leases_never_admit_more_than_the_shared_budget() {
        let shared: Mutex<Option<i64>> = Mutex::new(None);
        let calls = std::sync::atomic::AtomicU32::new(0);
        let take = |quota: Quota| {
            let (shared, calls) = (&shared, &calls);
            move |want: u32| async move {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut tat = shared.lock().unwrap();
                // A fixed clock: nothing refills while the test runs.
                let (d, granted, new_tat) = gcra_take(1_000_000, *tat, quota, want);
                if new_tat.is_some() {
                    *tat = new_tat;
                }
                Ok((i64::from(granted), d.retry_after_ms, d.remaining))
            }
        };
        let replicas = [Leases::default(), Leases::default()];

        // A tight budget: 40, no refill. Exactly 40 of 200 alternating requests pass.
        let quota = Quota {
            per_minute: 1,
            burst: 40,
        };
        let mut allowed = 0;
        for i in 0..200 {
            let d = leased_check(&replicas[i % 2], "t", quota, take(quota))
                .await
                .unwrap();
            if d.allowed {
                allowed += 1;
            } else {
                assert!(d.retry_after_ms > 0);
            }
        }
        assert_eq!(allowed, 40);

        // A generous budget: every request passes, and the shared budget is asked rarely.
        *shared.lock().unwrap() = None;
        calls.store(0, std::sync::atomic::Ordering::Relaxed);
        let quota = Quota {
            per_minute: u32::MAX,
            burst: 1_000_000,
        };
        for i in 0..2_000 {
            let d = leased_check(&replicas[i % 2], "busy", quota, take(quota))
                .await
                .unwrap();
            assert!(d.allowed);
        }
        let asked = calls.load(std::sync::atomic::Ordering::Relaxed);
        assert!(asked < 2_000 / 16, "{asked} calls for 2 000 requests");
    }
}
