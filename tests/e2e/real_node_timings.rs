//! Timings on the real node, a benchmark run by hand (tests/run.sh does not run it; the figures
//! go to BENCHMARKS.md, issue 19 target 7 and issue 16's time to restore):
//!
//!   tests/cluster/real-node/check-clean.sh cargo test --test real_node_timings -- --ignored --nocapture
//!
//! 1. `kubectl apply` of the minimal sample (local images) to Ready, and when each component's
//!    pod was created and became Ready, counted from the platform's creation;
//! 2. the first answered query (tenant, teammate, one document, processed, asked);
//! 3. with `CHUNKS` (10 000) chunks in ChromaDB, a backup, then `spec.restore: latest`: the time
//!    from the request to Ready again, and the same answer after it.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use oyl_e2e::real_node::*;
use oyl_e2e::{text_upload, wait_for};

/// Seconds from `from` to the RFC 3339 time `to`.
fn since(from: Timestamp, to: &serde_json::Value) -> f64 {
    to.as_str()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map_or(f64::NAN, |t| {
            (t - from)
                .total(k8s_openapi::jiff::Unit::Millisecond)
                .unwrap_or(f64::NAN)
                / 1000.0
        })
}

/// Per component: its pod's creation and Ready times, from the platform's creation.
fn component_times(ns: &str) {
    let platform = get_json(&["oylplatform", "demo", "-n", ns]).unwrap();
    let created: Timestamp = platform["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let pods = get_json(&["pods", "-n", ns]).unwrap();
    eprintln!("| component | pod created (s) | pod Ready (s) |\n|---|---:|---:|");
    for pod in pods["items"].as_array().cloned().unwrap_or_default() {
        let component = &pod["metadata"]["labels"]["app.kubernetes.io/component"];
        let ready = pod["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or_default();
        eprintln!(
            "| {} | {:.1} | {:.1} |",
            component.as_str().unwrap_or("?"),
            since(created, &pod["metadata"]["creationTimestamp"]),
            since(created, &ready)
        );
    }
}

/// About 100 chunks of distinct text per document (CHUNK_SIZE 1000, overlap 200).
fn document(i: usize) -> String {
    let mut text = String::with_capacity(80_000);
    let mut w = 0usize;
    while text.len() < 79_600 {
        text.push_str(&format!(
            "fact {i}-{w} concerns ledger{} and account{} ",
            w % 97,
            (w * 7 + i) % 89
        ));
        w += 1;
        if w.is_multiple_of(12) {
            text.push_str(".\n");
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark on a real node: tests/cluster/up.sh --real-node, by hand"]
async fn timings_from_apply_to_ready_to_answer_and_a_restore_of_ten_thousand_chunks() {
    if !enabled() {
        return;
    }
    let chunks: u64 = std::env::var("CHUNKS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000);
    let _images = setup().await;
    let t0 = Instant::now();
    let ns = ready_platform("timing").await;
    let ready = t0.elapsed();
    log(t0, "Ready");
    component_times(&ns.name);
    let addr = api_addr(&ns.name).await;
    let trip = rag_round_trip(&ns.name, &addr).await;
    log(
        t0,
        &format!("first answer (apply to Ready {:.1} s)", ready.as_secs_f64()),
    );

    // Documents until ChromaDB holds CHUNKS vectors.
    let t1 = Instant::now();
    let auth = format!("Bearer {}", trip.api.token);
    let tenant = trip.api.tenant.clone().unwrap();
    let docs = chunks.div_ceil(100) as usize;
    for i in 0..docs {
        let (content_type, body) = text_upload(&format!("doc-{i}.txt"), &document(i));
        let path = format!("/api/v1/assistants/{}/knowledge/upload", trip.assistant);
        // The platform's default work budget (30 at once, 120 a minute) answers 429 to a
        // burst of uploads (before reading the body, so the connection may close under the
        // upload: no answer): each is retried until the budget has room.
        wait_for(Duration::from_secs(120), "the upload accepted", || async {
            let answer = request(
                &addr,
                "POST",
                &path,
                &[("Authorization", &auth), ("X-Tenant-ID", &tenant)],
                Some((&content_type, &body)),
            )
            .await;
            match answer {
                Some((201, _)) => Some(()),
                Some((429, _)) | None => None,
                Some((status, out)) => panic!("upload: {status} {out}"),
            }
        })
        .await;
    }
    // The API's worker takes the uploads off the queue by itself (an upload wakes it).
    let status_path = format!("/api/v1/assistants/{}/knowledge/status", trip.assistant);
    wait_for(
        Duration::from_secs(1800),
        "every document processed",
        || async {
            let st = trip
                .api
                .call("GET", &status_path, serde_json::Value::Null)
                .await;
            (st["completed"].as_u64() == Some(docs as u64 + 1)).then_some(())
        },
    )
    .await;
    let vectors = chroma_vectors(&ns.name).await;
    log(
        t1,
        &format!("{docs} documents processed: {vectors} vectors in ChromaDB"),
    );
    assert!(vectors >= chunks, "{vectors} vectors");

    // The answer with every document in (what the restore must give back).
    let before = wait_for(
        Duration::from_secs(120),
        "an answer (the uploads used up the work budget)",
        || async { trip.ask_again().await.ok() },
    )
    .await;
    let t2 = Instant::now();
    backup(&ns.name).await;
    log(t2, "backed up");
    let t3 = Instant::now();
    patch_platform(
        &ns.name,
        &serde_json::json!({"spec": {"restore": {"file": "latest"}}}),
    );
    if let Err(conditions) = condition(&ns.name, "Ready", Duration::from_secs(900)).await {
        dump_state(&ns.name);
        panic!("not Ready again after the restore:\n{conditions}");
    }
    log(
        t3,
        &format!("restore of {vectors} vectors: requested to Ready"),
    );
    let again = wait_for(
        Duration::from_secs(120),
        "the API answering again",
        || async { trip.ask_again().await.ok() },
    )
    .await;
    log(t3, "restore: requested to the first answer");
    assert_eq!(
        again["responses"][0]["answer"],
        before["responses"][0]["answer"]
    );
    assert_eq!(
        chroma_vectors(&ns.name).await,
        vectors,
        "every vector is back"
    );
    component_times(&ns.name);
}
