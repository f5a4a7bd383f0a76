//! Per-tenant rate limits: 429 with Retry-After, one budget per tenant, shared by every replica
//! through Redis (when `TEST_REDIS_URL` is set), failing open when Redis is down.

use serde_json::json;

use crate::helpers::{Caller, redis_url, second_instance, spawn_app_with};

const LIMITS: [(&str, &str); 2] = [
    ("RATE_LIMIT_REQUESTS_PER_MINUTE", "6"),
    ("RATE_LIMIT_BURST", "4"),
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
    let app = spawn_app_with(&[LIMITS[0], LIMITS[1], ("REDIS_URL", "redis://127.0.0.1:1")]).await;
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
