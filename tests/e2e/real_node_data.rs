//! The platform's data on a real node: a backup taken by real `pg_dump`, lost rows, and a restore
//! through `spec.restore` that brings them back, so that the same question gets the same answer;
//! an upgrade to an API image with one more migration, and back.
//!
//! Runs like `real_node.rs` (see there): `#[ignore]`d, and only with
//! `OYL_E2E_REAL_NODE_KUBECONFIG` set (`tests/run.sh` does, as root).

use oyl_e2e::real_node::*;
use oyl_e2e::wait_for;
use oyl_operator::crd::OylPlatform;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Rows deleted behind the API's back (a bad script, a wrong `DELETE`), in PostgreSQL only: the
/// vectors in ChromaDB stay. The restore of the last backup brings the rows back, and the
/// teammate answers the same question with the same answer, citing the same document.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real node: tests/cluster/up.sh --real-node, OYL_E2E_REAL_NODE_KUBECONFIG, root"]
async fn a_restore_brings_deleted_rows_back_and_the_same_question_gets_the_same_answer() {
    if !enabled() {
        return;
    }
    let _node = NODE.lock().await;
    let t0 = Instant::now();
    let ns = ready_platform("restore").await;
    let addr = api_addr(&ns.name).await;
    let trip = rag_round_trip(&ns.name, &addr).await;
    backup(&ns.name).await;
    log(t0, "round trip done and backed up");

    // The loss: the teammate and, by cascade, its assistant, knowledge base, document, chunks.
    let deleted = psql(
        &ns.name,
        &format!(
            "with d as (delete from teammates where id = '{}' returning 1) select count(*) from d",
            trip.teammate
        ),
    );
    assert_eq!(deleted.trim(), "1", "one teammate deleted");
    let teammate_path = format!("/api/v1/teammates/{}", trip.teammate);
    let gone = trip
        .api
        .try_call("GET", &teammate_path, serde_json::Value::Null)
        .await;
    assert!(
        matches!(gone, Err((404, _))),
        "the teammate is gone: {gone:?}"
    );
    // The query path reads the teammate through the cache (60 s TTL): wait until it sees the
    // loss too, so that the answer after the restore cannot come from before it.
    wait_for(
        Duration::from_secs(120),
        "the query path to see the loss",
        || async { matches!(trip.ask_again().await, Err((404, _))).then_some(()) },
    )
    .await;
    log(t0, "rows deleted: the teammate answers 404");

    patch_platform(
        &ns.name,
        &serde_json::json!({"spec": {"restore": {"file": "latest"}}}),
    );
    let restored = match condition(&ns.name, "Ready", READY_TIMEOUT).await {
        Ok(p) => p,
        Err(conditions) => {
            dump_state(&ns.name);
            panic!("not Ready again after the restore:\n{conditions}");
        }
    };
    let record = restored_record(&restored);
    assert!(
        record.file == "latest" && record.claim_name == "demo-backup",
        "status.restored names what was restored: {record:?}"
    );
    log(t0, &format!("restored by Job {}", record.job));

    let teammate = trip
        .api
        .try_call("GET", &teammate_path, serde_json::Value::Null)
        .await;
    assert!(teammate.is_ok(), "the teammate is back: {teammate:?}");
    let again = wait_for(
        Duration::from_secs(60),
        "the API answering again",
        || async { trip.ask_again().await.ok() },
    )
    .await;
    let before = &trip.answer["responses"][0];
    let after = &again["responses"][0];
    assert_eq!(
        after["answer"], before["answer"],
        "the same answer: {again}"
    );
    assert_eq!(
        after["sources"][0]["file_name"], before["sources"][0]["file_name"],
        "citing the same document: {again}"
    );
    log(t0, "the same question gets the same answer");
}

fn restored_record(p: &OylPlatform) -> oyl_operator::crd::RestoreRecord {
    p.status
        .as_ref()
        .and_then(|s| s.restored.clone())
        .unwrap_or_else(|| panic!("Ready after a restore without status.restored: {p:?}"))
}

/// `spec.api.image` moved to a newer image with one more migration (version 9000): the
/// operator runs its migration Job for real, then rolls the API, with `/health` through the
/// Service answering 200 all along; moved back, the older API starts on the newer schema.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real node: tests/cluster/up.sh --real-node, OYL_E2E_REAL_NODE_KUBECONFIG, root"]
async fn an_upgrade_with_one_more_migration_rolls_without_a_failed_health_check_and_back() {
    if !enabled() {
        return;
    }
    let _node = NODE.lock().await;
    let t0 = Instant::now();
    let images = setup().await;
    let ns = ready_platform("upgrade").await;
    let addr = api_addr(&ns.name).await;
    let migrated = |ns: &str| psql(ns, "select coalesce(max(version), 0) from _sqlx_migrations");
    assert_eq!(migrated(&ns.name).trim(), "2", "the released schema");

    for (image, version) in [
        (&images["oyl-server-next"], "9000"),
        (&images["oyl-server"], "9000"),
    ] {
        let (stop, failed, seen) = health_watch(&addr);
        let migrations = migration_jobs(&ns.name).await;
        patch_platform(
            &ns.name,
            &serde_json::json!({"spec": {"api": {"image": image}}}),
        );
        if let Err(conditions) = condition(&ns.name, "Ready", READY_TIMEOUT).await {
            dump_state(&ns.name);
            panic!("not Ready on {image}:\n{conditions}");
        }
        let pods = wait_for(
            Duration::from_secs(120),
            "only pods of the new image, all ready",
            || async {
                let out = kubectl(
                    &["get", "pods", "-n", &ns.name, "-l", "app.kubernetes.io/component=api", "-o",
                      "jsonpath={range .items[*]}{.spec.containers[0].image} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}{\"\\n\"}{end}"],
                    None,
                );
                (!out.trim().is_empty()
                    && out.lines().all(|l| l.starts_with(&format!("{image} true "))))
                .then_some(out)
            },
        )
        .await;
        stop.store(true, Ordering::Relaxed);
        // The operator prunes a migration Job once the API runs its image: what the watch saw.
        let jobs = migrations.lock().unwrap().join("\n");
        log(t0, &format!("on {image}: pods {pods}migration Jobs {jobs}"));
        assert!(
            jobs.lines().any(|l| l == format!("{image} 1")),
            "a migration Job of {image} succeeded: {jobs}"
        );
        assert!(
            pods.lines().all(|l| l.ends_with(" 0")),
            "no API restarts on {image}: {pods}"
        );
        assert_eq!(migrated(&ns.name).trim(), version, "schema on {image}");
        let (failed, seen) = (failed.load(Ordering::Relaxed), seen.load(Ordering::Relaxed));
        assert!(seen > 0, "/health was watched");
        assert_eq!(
            failed, 0,
            "/health failed {failed} of {seen} times moving to {image}"
        );
    }
    log(
        t0,
        "upgraded with its migration and rolled back, /health 200 throughout",
    );
}

/// Every state of the platform's migration Jobs from now on, as `IMAGE SUCCEEDED` lines (a
/// watch: the operator deletes a Job soon after it succeeded).
async fn migration_jobs(ns: &str) -> Arc<std::sync::Mutex<Vec<String>>> {
    use futures::StreamExt;
    use k8s_openapi::api::batch::v1::Job;
    use kube::api::WatchEvent;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let jobs: kube::Api<Job> = kube::Api::namespaced(client().await, ns);
    let wp = kube::api::WatchParams::default().labels("app.kubernetes.io/component=migrate");
    let mut stream = jobs.watch(&wp, "0").await.unwrap().boxed();
    let out = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(event)) = stream.next().await {
            if let WatchEvent::Added(j) | WatchEvent::Modified(j) = event {
                let image = j
                    .spec
                    .and_then(|s| s.template.spec)
                    .and_then(|s| s.containers.into_iter().next())
                    .and_then(|c| c.image)
                    .unwrap_or_default();
                let succeeded = j.status.and_then(|s| s.succeeded).unwrap_or(0);
                out.lock().unwrap().push(format!("{image} {succeeded}"));
            }
        }
    });
    seen
}

/// GET /health through the Service every 100 ms until told to stop: (stop, failed, seen).
fn health_watch(addr: &str) -> (Arc<AtomicBool>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let (s, f, n, addr) = (stop.clone(), failed.clone(), seen.clone(), addr.to_string());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while !s.load(Ordering::Relaxed) {
            tick.tick().await;
            if !matches!(get(&addr, "/health").await, Some((200, _))) {
                f.fetch_add(1, Ordering::Relaxed);
            }
            n.fetch_add(1, Ordering::Relaxed);
        }
    });
    (stop, failed, seen)
}
