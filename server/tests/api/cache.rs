//! Teammate metadata is cached for queries and never read stale after a write: on this replica
//! always, on other replicas through Redis.

use serde_json::json;

use crate::helpers::{Caller, TestApp, redis_url, second_instance, spawn_app, spawn_app_with};

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

fn resource_count(metrics: &str, outcome: &str) -> u64 {
    let prefix = format!("resource_cache_lookups_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.parse().unwrap())
}

/// Workspaces, teammates, assistants and documents read by id come from the cache until a write
/// in the tenant; a document only once its processing settled (the pipeline changes it otherwise,
/// and invalidates when it claims and when it finishes one).
#[tokio::test]
async fn reads_by_id_are_cached_until_a_write_and_documents_once_settled() {
    let app = spawn_app_with(&[("WORKER_ENABLED", "false")]).await;
    let t = app.create_tenant("t").await;
    let (ws, tm, asst) = app.create_tree(&t).await;
    let paths = [
        format!("/api/v1/workspaces/{ws}"),
        format!("/api/v1/teammates/{tm}"),
        format!("/api/v1/assistants/{asst}"),
    ];
    for path in &paths {
        let first = app.get(&t.caller, path).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let second = app.get(&t.caller, path).await;
        assert_eq!(second.status, 200);
        assert_eq!(
            first.body, second.body,
            "{path}: the cached JSON is the same"
        );
        assert_eq!(
            second.header("content-type"),
            Some("application/json"),
            "{path}"
        );
    }
    let m = metrics(&app).await;
    assert_eq!(
        (resource_count(&m, "miss"), resource_count(&m, "hit")),
        (3, 3),
        "{m}"
    );
    // A write invalidates: the renamed workspace shows at once; unknown ids stay 404s.
    let renamed = app
        .patch(&t.caller, &paths[0], json!({"name": "renamed"}))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(app.get(&t.caller, &paths[0]).await.body["name"], "renamed");
    let missing = app
        .get(
            &t.caller,
            &format!("/api/v1/workspaces/{}", uuid::Uuid::new_v4()),
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text);

    // A pending document is read from the database every time (not kept)...
    let up = app
        .upload(&t.caller, &asst, "a.txt", b"alpha beta gamma".to_vec())
        .await;
    assert_eq!(up.status, 201, "{}", up.text);
    let doc = format!("/api/v1/documents/{}", up.id());
    let before = metrics(&app).await;
    for _ in 0..2 {
        assert_eq!(
            app.get(&t.caller, &doc).await.body["processed_status"],
            "pending"
        );
    }
    let after = metrics(&app).await;
    assert_eq!(
        resource_count(&after, "miss") - resource_count(&before, "miss"),
        2,
        "{after}"
    );
    // ...processing settles it (and invalidates): read once from the database, then cached.
    let processed = app.process_batch(&t.caller, &asst).await;
    assert_eq!(processed.status, 200, "{}", processed.text);
    for _ in 0..2 {
        assert_eq!(
            app.get(&t.caller, &doc).await.body["processed_status"],
            "completed"
        );
    }
    let settled = metrics(&app).await;
    assert_eq!(
        (
            resource_count(&settled, "miss") - resource_count(&after, "miss"),
            resource_count(&settled, "hit") - resource_count(&after, "hit")
        ),
        (1, 1),
        "{settled}"
    );
    assert_eq!(resource_count(&settled, "error"), 0);
}

/// With Redis, a write on one replica is seen at once by reads by id on another.
#[tokio::test]
async fn a_read_by_id_on_another_replica_sees_a_write_at_once_with_redis() {
    if redis_url().is_none() {
        return; // without Redis each replica caches alone (stale for at most the TTL)
    }
    let app = spawn_app().await;
    let other = second_instance(&app, &[]).await;
    let t = app.create_tenant("t").await;
    let (_, tm, _) = app.create_tree(&t).await;
    let path = format!("/api/v1/teammates/{tm}");
    assert_eq!(app.get(&t.caller, &path).await.body["name"], "tm");
    assert_eq!(app.get(&t.caller, &path).await.body["name"], "tm", "cached");
    let renamed = app
        .client
        .patch(format!("{}{path}", other.address))
        .bearer_auth(t.caller.token.as_ref().unwrap())
        .header("x-tenant-id", &t.id)
        .json(&json!({"name": "renamed elsewhere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    assert_eq!(
        app.get(&t.caller, &path).await.body["name"],
        "renamed elsewhere"
    );
}

/// A database replaced behind the API (a restore) is not seen through Redis by the servers that
/// cached it, but a server given a new `CACHE_NAMESPACE` (as the operator does after a restore)
/// reads nothing cached before.
#[tokio::test]
async fn a_new_cache_namespace_reads_nothing_cached_before_a_restore() {
    if redis_url().is_none() {
        return; // the in-process cache goes with the process a restore replaces
    }
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (ws, _, _) = app.create_tree(&t).await;
    let path = format!("/api/v1/workspaces/{ws}");
    let cached = app.get(&t.caller, &path).await;
    assert_eq!(cached.status, 200, "{}", cached.text);
    // "The restore": the row changes in the database, not through the API.
    let db = crate::helpers::raw_db(&app);
    oyl_server::with_pool!(db, pool => {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE workspaces SET name = 'restored' WHERE id = '{ws}'"
        )))
        .execute(pool)
        .await
        .map(|_| ())
    })
    .unwrap();
    let stale = second_instance(&app, &[]).await;
    let read = |address: String| {
        let (client, caller) = (app.client.clone(), t.caller.clone());
        let tenant = t.id.clone();
        let path = path.clone();
        async move {
            let r = client
                .get(format!("{address}{path}"))
                .bearer_auth(caller.token.as_ref().unwrap())
                .header("x-tenant-id", tenant)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()["name"].clone()
        }
    };
    assert_eq!(
        read(stale.address.clone()).await,
        cached.body["name"],
        "same namespace: the entry cached before the change (this is what a restore must avoid)"
    );
    let fresh = second_instance(&app, &[("CACHE_NAMESPACE", "acme-restore-1")]).await;
    assert_eq!(read(fresh.address.clone()).await, "restored");
}
