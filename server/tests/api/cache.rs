//! Teammate metadata is cached for queries and never read stale after a write: on this replica
//! always, on other replicas through Redis.

use serde_json::json;

use crate::helpers::{Caller, TestApp, redis_url, second_instance, spawn_app};

fn cache_count(metrics: &str, outcome: &str) -> u64 {
    let prefix = format!("cache_lookups_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0)
}

async fn metrics(app: &TestApp) -> String {
    app.get(&Caller::anonymous(), "/metrics").await.text
}

#[tokio::test]
async fn queries_use_the_cache_until_a_write_invalidates_it() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, tm, asst) = app.create_tree(&t).await;
    let path = format!("/api/v1/teammates/{tm}/query");
    let ask = || app.post(&t.caller, &path, json!({"query": "anything"}));
    let first = ask().await;
    assert_eq!(first.body["responses"][0]["assistant_name"], "asst");
    let second = ask().await;
    assert_eq!(second.body["responses"][0]["assistant_name"], "asst");
    let m = metrics(&app).await;
    assert_eq!(
        (cache_count(&m, "miss"), cache_count(&m, "hit")),
        (1, 1),
        "{m}"
    );

    // Any write in the tenant invalidates: the renamed assistant shows at once.
    assert_eq!(
        app.patch(
            &t.caller,
            &format!("/api/v1/assistants/{asst}"),
            json!({"name": "renamed"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        ask().await.body["responses"][0]["assistant_name"],
        "renamed"
    );
    // A failed write does not (nothing changed), a read never does.
    assert_eq!(
        app.patch(
            &t.caller,
            &format!("/api/v1/assistants/{asst}"),
            json!({"name": ""})
        )
        .await
        .status,
        422
    );
    app.get(&t.caller, &format!("/api/v1/assistants/{asst}"))
        .await;
    ask().await;
    let m = metrics(&app).await;
    assert_eq!(
        (cache_count(&m, "miss"), cache_count(&m, "hit")),
        (2, 2),
        "{m}"
    );
    assert_eq!(cache_count(&m, "error"), 0);
}

#[tokio::test]
async fn a_write_on_another_replica_is_seen_at_once_with_redis() {
    let app = spawn_app().await;
    let other = second_instance(&app, &[]).await;
    let t = app.create_tenant("t").await;
    let (ws, tm, _) = app.create_tree(&t).await;
    let path = format!("/api/v1/teammates/{tm}/query");
    assert_eq!(
        app.post(&t.caller, &path, json!({"query": "x"}))
            .await
            .status,
        200,
        "cached on the first replica"
    );

    // The other replica deletes the workspace (the teammate goes with it).
    let deleted = app
        .client
        .delete(format!("{}/api/v1/workspaces/{ws}", other.address))
        .bearer_auth(t.caller.token.as_ref().unwrap())
        .header("x-tenant-id", &t.id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let after = app.post(&t.caller, &path, json!({"query": "x"})).await;
    if redis_url().is_some() {
        assert_eq!(
            after.status, 404,
            "the shared generation makes the first replica re-read: {}",
            after.text
        );
    } else {
        // Without Redis each replica caches alone: stale for at most the TTL (60 s).
        assert_eq!(after.status, 200, "{}", after.text);
    }
    // On the replica that wrote, it is gone either way.
    let there = app
        .client
        .post(format!("{}{path}", other.address))
        .bearer_auth(t.caller.token.as_ref().unwrap())
        .header("x-tenant-id", &t.id)
        .json(&json!({"query": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(there.status(), 404);
}

#[tokio::test]
async fn the_tenant_is_cached_and_counted_like_teammates() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let path = format!("/api/v1/tenants/{}", t.id);
    let count = |m: &str, outcome: &str| {
        let prefix = format!("tenant_cache_lookups_total{{outcome=\"{outcome}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |v| v.parse::<u64>().unwrap())
    };
    assert_eq!(app.get(&t.caller, &path).await.body["name"], "t");
    assert_eq!(app.get(&t.caller, &path).await.body["name"], "t");
    let m = metrics(&app).await;
    assert_eq!((count(&m, "miss"), count(&m, "hit")), (1, 1), "{m}");
    // The rename invalidates in its write path: the next read misses and sees the new name.
    let renamed = app.patch(&t.caller, &path, json!({"name": "u"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(app.get(&t.caller, &path).await.body["name"], "u");
    let m = metrics(&app).await;
    assert_eq!((count(&m, "miss"), count(&m, "hit")), (2, 1), "{m}");
}
