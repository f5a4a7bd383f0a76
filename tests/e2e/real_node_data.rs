//! The platform's data on a real node: a backup taken by real `pg_dump`, lost rows, and a restore
//! through `spec.restore` that brings them back, so that the same question gets the same answer.
//!
//! Runs like `real_node.rs` (see there): `#[ignore]`d, and only with
//! `OYL_E2E_REAL_NODE_KUBECONFIG` set (`tests/run.sh` does, as root).

use oyl_e2e::real_node::*;
use oyl_e2e::wait_for;
use oyl_operator::crd::OylPlatform;
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

    kubectl(
        &[
            "patch",
            "oylplatform",
            "demo",
            "-n",
            &ns.name,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"restore":{"file":"latest"}}}"#,
        ],
        None,
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
