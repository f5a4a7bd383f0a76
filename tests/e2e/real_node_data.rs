//! The platform's data on a real node: a backup taken by real `pg_dump`, lost rows, and a restore
//! through `spec.restore` that brings them back, so that the same question gets the same answer;
//! an upgrade to an API image with one more migration, and back.
//!
//! Runs like `real_node.rs` (see there): `#[ignore]`d, and only with
//! `OYL_E2E_REAL_NODE_KUBECONFIG` set (`tests/run.sh` does, as root).

use oyl_e2e::real_node::*;
use oyl_e2e::{condition_of, kubectl_as, wait_for};
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
    // The weekly restore verification, run now: the dump just taken restores into a throwaway
    // PostgreSQL in the Job's own pod, every table's rows and the schema version as recorded.
    let dump = std::fs::read_dir(backup_volume_dir(&ns.name))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("postgres-") && n.ends_with(".dump"))
        .max()
        .unwrap();
    let verified = verify_now(&ns.name, "verify-now-1", "lastVerifiedBackup").await;
    assert_eq!(verified["dump"], dump.as_str(), "{verified}");
    assert_eq!(
        verified["schemaVersion"].to_string(),
        psql(&ns.name, "select max(version) from _sqlx_migrations").trim(),
        "{verified}"
    );
    assert!(
        verified["tables"].as_i64() >= Some(10) && verified["rows"].as_i64() > Some(0),
        "{verified}"
    );
    log(t0, &format!("verified: {verified}"));

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
    // Reads by id and the query path read the teammate through the cache (a write through the
    // API invalidates it at once; one behind it, like this, is seen within the 60 s TTL): wait
    // until both see the loss, so that nothing after the restore can come from before it.
    wait_for(
        Duration::from_secs(120),
        "reads by id and the query path to see the loss",
        || async {
            let gone = trip
                .api
                .try_call("GET", &teammate_path, serde_json::Value::Null)
                .await;
            (matches!(gone, Err((404, _))) && matches!(trip.ask_again().await, Err((404, _))))
                .then_some(())
        },
    )
    .await;
    log(t0, "rows deleted: the teammate answers 404");
    // And the vector store is lost: only the restore's ChromaDB step brings the vectors back.
    wipe_chroma(&ns.name).await;
    assert_eq!(chroma_vectors(&ns.name).await, 0, "ChromaDB wiped");

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
    // Before the API took traffic the smoke test asked the restored platform: every dependency
    // ready, the newest document's vectors back in ChromaDB, a query finding it.
    let smoke = record.smoke_test_result.clone().unwrap_or_default();
    assert!(
        record.smoke_test.is_some()
            && smoke.contains("/readyz ok (")
            && smoke.contains("chroma ok")
            && smoke.contains("in the chroma store")
            && smoke.contains("found it"),
        "status.restored: {record:?}"
    );
    log(t0, &smoke);
    assert!(
        chroma_vectors(&ns.name).await > 0,
        "ChromaDB's vectors are back with the restore"
    );

    // Scaled back up from zero: the Service answers once kube-proxy has the new endpoints.
    wait_until_served(&trip.api.addr).await;
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

    // A newer dump that does not restore (an archive that is no archive, its checksum
    // matching): the verification fails and BackupHealthy says why.
    let dir = backup_volume_dir(&ns.name);
    let bogus = "postgres-29991231T000000Z.dump";
    std::fs::write(format!("{dir}/{bogus}"), b"not a dump").unwrap();
    let sum = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("cd {dir} && sha256sum {bogus} > {bogus}.sha256"),
        ])
        .status()
        .unwrap();
    assert!(sum.success());
    let failed = verify_now(&ns.name, "verify-now-2", "lastFailedVerification").await;
    for f in [bogus.to_string(), format!("{bogus}.sha256")] {
        std::fs::remove_file(format!("{dir}/{f}")).unwrap();
    }
    assert_eq!(failed["dump"], bogus, "{failed}");
    let p = wait_condition(&ns.name, "BackupHealthy", "False", Duration::from_secs(30)).await;
    assert_eq!(p.reason, "VerificationFailed", "{p:?}");
    assert!(
        p.message.contains("not a readable pg_dump archive"),
        "{p:?}"
    );
    log(t0, &format!("verification failed: {}", p.message));

    // A restore that does not bring the vectors back (no ChromaDB archive on the volume any
    // more, ChromaDB wiped): the smoke test finds the newest document without its chunks, so
    // the API stays at zero, Degraded SmokeTestFailed with the report. Removing spec.restore
    // brings it back as it is.
    let mut dumps = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.starts_with("chroma-") {
            std::fs::remove_file(format!("{dir}/{name}")).unwrap();
        } else if name.starts_with("postgres-") && name.ends_with(".dump") {
            dumps.push(name);
        }
    }
    dumps.sort();
    let dump = dumps.pop().expect("a dump on the volume");
    wipe_chroma(&ns.name).await;
    log(
        t0,
        &format!("restore of {dump} without ChromaDB's archive requested"),
    );
    patch_platform(
        &ns.name,
        &serde_json::json!({"spec": {"restore": {"file": dump}}}),
    );
    let failed = wait_condition(&ns.name, "Degraded", "True", READY_TIMEOUT).await;
    assert_eq!(failed.reason, "SmokeTestFailed", "{failed:?}");
    assert!(
        failed.message.contains("holds 0 chunk(s) of document")
            && failed
                .message
                .contains("the vectors do not match the documents"),
        "{failed:?}"
    );
    let api_replicas = kubectl(
        &[
            "get",
            "deployment",
            "demo-api",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        None,
    );
    assert_eq!(api_replicas.trim(), "0", "the API held at zero");
    log(t0, &format!("smoke test failed: {}", failed.message));
    patch_platform(&ns.name, &serde_json::json!({"spec": {"restore": null}}));
    if let Err(conditions) = condition(&ns.name, "Ready", READY_TIMEOUT).await {
        dump_state(&ns.name);
        panic!("not Ready once spec.restore was removed:\n{conditions}");
    }
    log(t0, "spec.restore removed: Ready, the API back as it is");
}

/// The condition `type_` of the platform `demo` in `ns` once its status is `status`.
async fn wait_condition(
    ns: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    wait_for(timeout, &format!("{type_} {status}"), || async {
        let p: OylPlatform = serde_json::from_slice(
            &kubectl_as(
                &kubeconfig(),
                &["get", "oylplatform", "demo", "-n", ns, "-o", "json"],
                None,
            )
            .stdout,
        )
        .ok()?;
        condition_of(&p, type_).filter(|c| c.status == status)
    })
    .await
}

/// `status.walArchive` of the platform `demo` in `ns` once `ok` holds for it.
async fn wal_archive_status(
    ns: &str,
    timeout: Duration,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let ok = &ok;
    wait_for(timeout, what, || async move {
        let out = kubectl_as(
            &kubeconfig(),
            &[
                "get",
                "oylplatform",
                "demo",
                "-n",
                ns,
                "-o",
                "jsonpath={.status.walArchive}",
            ],
            None,
        );
        let wal: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        ok(&wal).then_some(wal)
    })
    .await
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

/// Runs SQL in the platform's PostgreSQL as the superuser, over the pod's socket: what only the
/// server's own user may do (switch the WAL segment, read the archiver's statistics).
fn psql_superuser(ns: &str, sql: &str) -> String {
    kubectl(
        &[
            "exec",
            "-n",
            ns,
            "deploy/demo-postgres",
            "-c",
            "postgres",
            "--",
            "psql",
            "-U",
            "postgres",
            "-d",
            "oyl",
            "-h",
            "/var/run/postgresql",
            "-v",
            "ON_ERROR_STOP=1",
            "-XtAc",
            sql,
        ],
        None,
    )
    .trim()
    .to_string()
}

/// Point-in-time recovery on real pods: WAL archiving on, a base backup taken beside PostgreSQL,
/// rows and a RAG round trip, a noted time, more rows and a deleted tenant, the WAL archived;
/// `spec.restore.targetTime` set to the noted time brings back exactly the rows from before it
/// and the tenant, and the same question gets the same answer.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real node: tests/cluster/up.sh --real-node, OYL_E2E_REAL_NODE_KUBECONFIG, root"]
async fn a_point_in_time_restore_brings_back_exactly_what_was_there_at_the_target() {
    if !enabled() {
        return;
    }
    let _node = NODE.lock().await;
    let t0 = Instant::now();
    let ns = ready_platform_with(
        "pitr",
        serde_json::json!({"backup": {"walArchiving": {"archiveTimeoutSeconds": 60}}}),
    )
    .await;
    let n = ns.name.clone();
    // The first base backup, taken as soon as PostgreSQL is ready; the rows must come after its
    // end, the first recoverable point.
    let end: i64 = wait_for(Duration::from_secs(240), "the first base backup", || {
        let n = n.clone();
        async move {
            let out = kubectl_as(
                &kubeconfig(),
                &[
                    "exec",
                    "-n",
                    &n,
                    "deploy/demo-postgres",
                    "-c",
                    "base-backup",
                    "--",
                    "sh",
                    "-c",
                    "cat /backups/base/*/info",
                ],
                None,
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("end_epoch="))?
                .parse()
                .ok()
        }
    })
    .await;
    log(t0, "base backup taken");
    // The wal-check CronJob (every minute with this archive timeout) reports the window from it.
    let wal = wal_archive_status(
        &n,
        Duration::from_secs(180),
        "the recoverable window",
        |w| w["firstRecoverableTime"].as_str().is_some(),
    )
    .await;
    let first = k8s_openapi::jiff::Timestamp::from_second(end).unwrap();
    assert_eq!(
        wal["firstRecoverableTime"].as_str(),
        Some(first.to_string().as_str()),
        "the window starts at the base backup's end: {wal}"
    );
    assert!(wal["failure"].is_null(), "{wal}");
    log(t0, &format!("status.walArchive: {wal}"));
    wait_for(
        Duration::from_secs(30),
        "the clock past the base backup",
        || {
            let n = n.clone();
            async move {
                (psql(
                    &n,
                    &format!("select extract(epoch from clock_timestamp()) > {end}"),
                )
                .trim()
                    == "t")
                    .then_some(())
            }
        },
    )
    .await;

    let addr = api_addr(&n).await;
    let trip = rag_round_trip(&n, &addr).await;
    psql(
        &n,
        "create table pitr_probe (x int primary key); insert into pitr_probe values (1), (2), (3)",
    );
    let noted = psql(
        &n,
        "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
    .trim()
    .to_string();
    log(t0, &format!("round trip done; noted {noted}"));

    // After the noted time: more rows, and the round trip's tenant deleted (with everything in it).
    psql(&n, "insert into pitr_probe values (4), (5), (6)");
    let tenant = trip.api.tenant.clone().unwrap();
    let deleted = psql(
        &n,
        &format!(
            "with d as (delete from tenants where id = '{tenant}' returning 1) select count(*) from d"
        ),
    );
    assert_eq!(deleted.trim(), "1");
    // Archive the segment holding those writes (the restore must see a commit after the target
    // to stop there) and wait until the archiver has it.
    let segment = psql_superuser(&n, "select pg_walfile_name(pg_current_wal_insert_lsn())");
    psql_superuser(&n, "select pg_switch_wal()");
    wait_for(Duration::from_secs(60), "the WAL archived", || {
        let (n, segment) = (n.clone(), segment.clone());
        async move {
            let last = psql_superuser(
                &n,
                "select coalesce(last_archived_wal, '') from pg_stat_archiver",
            );
            (last.as_str() >= segment.as_str()).then_some(())
        }
    })
    .await;
    log(t0, &format!("tenant deleted, {segment} archived"));

    log(t0, "point-in-time restore requested");
    patch_platform(
        &n,
        &serde_json::json!({"spec": {"restore": {"targetTime": noted}}}),
    );
    let restored = match condition(&n, "Ready", READY_TIMEOUT).await {
        Ok(p) => p,
        Err(conditions) => {
            dump_state(&n);
            panic!("not Ready again after the point-in-time restore:\n{conditions}");
        }
    };
    let record = restored_record(&restored);
    assert_eq!(
        record.target_time.as_deref(),
        Some(noted.as_str()),
        "{record:?}"
    );
    log(t0, &format!("restored to {noted} by Job {}", record.job));
    let smoke = record.smoke_test_result.clone().unwrap_or_default();
    assert!(
        smoke.starts_with("smoke test passed: /readyz ok ("),
        "status.restored: {record:?}"
    );
    log(t0, &smoke);

    assert_eq!(
        psql(
            &n,
            "select string_agg(x::text, ',' order by x) from pitr_probe"
        )
        .trim(),
        "1,2,3",
        "exactly the rows from before the target"
    );
    assert_eq!(
        psql(
            &n,
            &format!("select count(*) from tenants where id = '{tenant}'")
        )
        .trim(),
        "1",
        "the tenant is back"
    );
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

    // The archive turns unwritable (as a full volume would): the next segment cannot be archived,
    // the check reports it and the platform is Degraded with the reason; writable again, the
    // stuck segment is archived and the platform Ready.
    let wal_dir = |mode: &str| {
        kubectl_as(
            &kubeconfig(),
            &[
                "exec",
                "-n",
                &n,
                "deploy/demo-postgres",
                "-c",
                "base-backup",
                "--",
                "chmod",
                mode,
                "/backups/wal",
            ],
            None,
        )
    };
    assert!(
        wal_dir("0555").status.success(),
        "the archive made read-only"
    );
    let stuck = psql_superuser(&n, "select pg_walfile_name(pg_current_wal_insert_lsn())");
    psql(&n, "insert into pitr_probe values (7)");
    psql_superuser(&n, "select pg_switch_wal()");
    let degraded = match condition(&n, "Degraded", Duration::from_secs(240)).await {
        Ok(p) => p,
        Err(conditions) => {
            dump_state(&n);
            panic!("not Degraded with the archive unwritable:\n{conditions}");
        }
    };
    let reason = degraded
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Degraded"))
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap();
    assert_eq!(reason.0, "WalArchiveFailing", "{reason:?}");
    assert!(
        reason.1.contains(stuck.trim()),
        "the message names the segment: {reason:?}"
    );
    log(t0, &format!("Degraded: {}", reason.1));
    assert!(
        wal_dir("0755").status.success(),
        "the archive writable again"
    );
    psql(&n, "insert into pitr_probe values (8)");
    psql_superuser(&n, "select pg_switch_wal()");
    if let Err(conditions) = condition(&n, "Ready", Duration::from_secs(240)).await {
        dump_state(&n);
        panic!("not Ready again once the archive is writable:\n{conditions}");
    }
    let wal = wal_archive_status(&n, Duration::from_secs(10), "a healthy check", |w| {
        w["failure"].is_null()
    })
    .await;
    log(t0, &format!("Ready again: {wal}"));
}
