//! Per-tenant rate limits: 429 with Retry-After, one budget per tenant, shared by every replica
//! through Redis (when `TEST_REDIS_URL` is set), failing open when Redis is down.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Caller, Resp, TestApp, redis_url, second_instance, spawn_app_with};

const LIMITS: [(&str, &str); 4] = [
    ("RATE_LIMIT_REQUESTS_PER_MINUTE", "6"),
    ("RATE_LIMIT_BURST", "4"),
    ("RATE_LIMIT_READS_PER_MINUTE", "6"),
    ("RATE_LIMIT_READ_BURST", "4"),
];

/// The server's own defaults: the test environment's generous limits removed.
const DEFAULT_LIMITS: [(&str, &str); 4] = [
    ("RATE_LIMIT_REQUESTS_PER_MINUTE", ""),
    ("RATE_LIMIT_BURST", ""),
    ("RATE_LIMIT_READS_PER_MINUTE", ""),
    ("RATE_LIMIT_READ_BURST", ""),
];

#[tokio::test]
async fn a_tenant_over_its_budget_gets_429_with_retry_after() {
    let app = spawn_app_with(&LIMITS).await;
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;
    let path = |t: &crate::helpers::TenantCtx| format!("/api/v1/tenants/{}", t.id);
    for _ in 0..4 {
        assert_eq!(app.get(&a.caller, &path(&a)).await.status, 200);
    }
    let limited = app.get(&a.caller, &path(&a)).await;
    assert_eq!(
        (limited.status, limited.body["detail"].as_str()),
        (429, Some("Rate limit exceeded")),
        "{}",
        limited.text
    );
    // 6 per minute = one every 10 s: the next slot is about 10 s away.
    let retry: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    // Another tenant has its own budget; unauthenticated operations are not limited.
    assert_eq!(app.get(&b.caller, &path(&b)).await.status, 200);
    for _ in 0..10 {
        assert_eq!(app.get(&Caller::anonymous(), "/health").await.status, 200);
    }
    let metrics = app.get(&Caller::anonymous(), "/metrics").await.text;
    assert!(metrics.contains("rate_limited_total 1"), "{metrics}");
    assert!(metrics.contains("rate_limiter_errors_total 0"));
}

#[tokio::test]
async fn replicas_share_one_budget_through_redis() {
    let app = spawn_app_with(&LIMITS).await;
    let other = second_instance(&app, &LIMITS).await;
    let t = app.create_tenant("shared").await;
    let path = format!("/api/v1/tenants/{}", t.id);
    let mut allowed = 0;
    for i in 0..8 {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            other.address.clone()
        };
        let resp = app
            .client
            .get(format!("{base}{path}"))
            .bearer_auth(t.caller.token.as_ref().unwrap())
            .header("x-tenant-id", &t.id)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            allowed += 1;
        } else {
            assert_eq!(resp.status(), 429);
            assert!(resp.headers().contains_key("retry-after"));
        }
    }
    if redis_url().is_some() {
        assert_eq!(allowed, 4, "two replicas, one budget of 4");
    } else {
        // Without Redis each process counts alone (the documented limitation of the fallback).
        assert_eq!(allowed, 8, "in-process budgets are per replica");
    }
}

#[tokio::test]
async fn a_dead_redis_lets_requests_through_and_readyz_reports_it() {
    // Nothing listens on port 1.
    let mut env = LIMITS.to_vec();
    env.push(("REDIS_URL", "redis://127.0.0.1:1"));
    let app = spawn_app_with(&env).await;
    let t = app.create_tenant("t").await;
    for _ in 0..6 {
        let resp = app
            .get(&t.caller, &format!("/api/v1/tenants/{}", t.id))
            .await;
        assert_eq!(resp.status, 200, "fail open: {}", resp.text);
    }
    let ready = app.get(&Caller::anonymous(), "/readyz").await;
    assert_eq!(
        ready.status, 200,
        "Redis does not take the replica out of rotation: {}",
        ready.text
    );
    assert_eq!(ready.body["status"], "degraded");
    assert_eq!(ready.body["checks"]["database"], "ok");
    assert!(
        ready.body["checks"]["redis"]
            .as_str()
            .unwrap()
            .starts_with("unreachable"),
        "{}",
        ready.text
    );
    let metrics = app.get(&Caller::anonymous(), "/metrics").await.text;
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rate_limiter_errors_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(errors >= 6, "{errors}");
    // Writes and queries work too; the cache (also Redis) falls back to the database.
    let (_, tm, _) = app.create_tree(&t).await;
    let query = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "x"}),
        )
        .await;
    assert_eq!(query.status, 200, "{}", query.text);
    let metrics = app.get(&Caller::anonymous(), "/metrics").await.text;
    assert!(
        metrics.contains("cache_lookups_total{outcome=\"error\"} 1"),
        "{metrics}"
    );
}

fn assert_not_limited(resp: &Resp, what: &str) {
    assert_ne!(resp.status, 429, "{what} was rate limited: {}", resp.text);
    assert!(resp.status < 400, "{what}: {} {}", resp.status, resp.text);
}

/// On the defaults, one ordinary interactive session is never throttled: set up a tree, upload
/// two documents, poll their status twice a second for 30 s while the worker processes them,
/// and ask ten questions.
#[tokio::test]
async fn the_defaults_never_throttle_one_interactive_session() {
    let mut env = DEFAULT_LIMITS.to_vec();
    env.push(("WORKER_ENABLED", "true"));
    let app = spawn_app_with(&env).await;
    assert_eq!(app.config.rate_limit_requests_per_minute, 120);
    assert_eq!(app.config.rate_limit_reads_per_minute, 600);
    let t = app.create_tenant("interactive").await;
    let (_, tm, asst) = app.create_tree(&t).await;
    for (name, text) in [
        (
            "handbook.txt",
            "The office opens at nine. Lunch is served at noon.",
        ),
        (
            "policy.txt",
            "Remote work is allowed on Fridays. Expenses need receipts.",
        ),
    ] {
        let up = app
            .upload(&t.caller, &asst, name, text.as_bytes().to_vec())
            .await;
        assert_not_limited(&up, "upload");
    }
    let status = format!("/api/v1/assistants/{asst}/knowledge/status");
    // The pace is what is tested here (a person's UI polling at 2/s), not a wait for a condition.
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    for _ in 0..60 {
        tick.tick().await;
        assert_not_limited(&app.get(&t.caller, &status).await, "status poll");
    }
    for i in 0..10 {
        let q = app
            .post(
                &t.caller,
                &format!("/api/v1/teammates/{tm}/query"),
                json!({"query": format!("When does the office open? ({i})")}),
            )
            .await;
        assert_not_limited(&q, "query");
    }
    let metrics = app.get(&Caller::anonymous(), "/metrics").await.text;
    assert!(metrics.contains("rate_limited_total 0"), "{metrics}");
}

async fn count_until_limited<F, Fut>(app: &TestApp, n: usize, send: F) -> (usize, Resp)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Resp>,
{
    for allowed in 0..n {
        let resp = send().await;
        if resp.status == 429 {
            return (allowed, resp);
        }
        assert!(resp.status < 400, "{} {}", resp.status, resp.text);
    }
    let metrics = app.get(&Caller::anonymous(), "/metrics").await.text;
    panic!("{n} requests in a burst were never limited: {metrics}");
}

/// Abuse is still limited on the defaults, per budget: reads far faster than any UI polls, and
/// queries far faster than anyone types, each get 429 with Retry-After, and an exhausted read
/// budget does not block work (nor the other way round).
#[tokio::test]
async fn the_defaults_still_limit_abuse_with_retry_after() {
    let app = spawn_app_with(&DEFAULT_LIMITS).await;
    let t = app.create_tenant("abusive").await;
    let (_, tm, asst) = app.create_tree(&t).await;
    let status = format!("/api/v1/assistants/{asst}/knowledge/status");
    let query = format!("/api/v1/teammates/{tm}/query");

    let (reads, limited) = count_until_limited(&app, 1000, || app.get(&t.caller, &status)).await;
    // Burst 120 at 600/min: about 120 back-to-back reads, plus the few the rate refills meanwhile.
    assert!(
        (120..200).contains(&reads),
        "{reads} reads before the limit"
    );
    let retry: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert_eq!(retry, 1, "one read every 100 ms, rounded up to a second");
    assert_not_limited(
        &app.post(&t.caller, &query, json!({"query": "still allowed"}))
            .await,
        "a query after the reads ran out",
    );

    let (work, limited) = count_until_limited(&app, 500, || {
        app.post(&t.caller, &query, json!({"query": "again"}))
    })
    .await;
    // Burst 30 at 120/min, less the three creates of the tree and the query above.
    assert!((26..60).contains(&work), "{work} queries before the limit");
    let retry: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert_eq!(retry, 1, "one query every 500 ms, rounded up to a second");
    assert_eq!(limited.body["detail"], "Rate limit exceeded");
}
