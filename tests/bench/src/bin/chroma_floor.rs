//! ChromaDB's own ingestion rate, the floor under oyl-server's: upserts RECORDS records (384
//! dimensions, ~800 characters of text and the server's four metadata keys each, as
//! `server/src/rag/chroma.rs` writes them) into a fresh collection, BATCH records per request,
//! from CLIENTS concurrent clients, and prints records/s as JSON. Nothing of oyl-server runs: what
//! this measures is ChromaDB on this machine.
//!
//!   chroma_floor --url http://127.0.0.1:28000 [--records 2000] [--batch 100] [--clients 1]
//!                [--hnsw-batch 100] [--sync-threshold 1000]
//!
//! `--hnsw-batch` and `--sync-threshold` set the collection's `hnsw:batch_size` and
//! `hnsw:sync_threshold` (ChromaDB's defaults: 100 and 1 000), to see whether they move the floor.

use oyl_bench::{arg, xorshift};
use std::time::Instant;

use serde_json::{Value, json};

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Deterministic pseudo-random vector (xorshift), so every run sends the same data.
fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut next = xorshift(seed);
    (0..dim)
        .map(|_| (next() % 10_000) as f32 / 10_000.0 - 0.5)
        .collect()
}

#[tokio::main]
async fn main() {
    let base = arg("--url", "http://127.0.0.1:28000");
    let records: usize = arg("--records", "2000").parse().expect("--records");
    let batch: usize = arg("--batch", "100").parse().expect("--batch");
    let clients: usize = arg("--clients", "1").parse().expect("--clients");
    let hnsw_batch: u64 = arg("--hnsw-batch", "100").parse().expect("--hnsw-batch");
    let sync_threshold: u64 = arg("--sync-threshold", "1000")
        .parse()
        .expect("--sync-threshold");
    // reqwest is built without a TLS provider of its own; plain HTTP needs none, but the client
    // insists on one being installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let databases = format!("{base}/api/v2/tenants/default_tenant/databases");
    let db = format!("floor_{stamp}");
    post(&client, &databases, &json!({ "name": db })).await;
    let collection = post(
        &client,
        &format!("{databases}/{db}/collections"),
        &json!({ "name": "floor", "metadata": {
            "hnsw:space": "cosine",
            "hnsw:batch_size": hnsw_batch,
            "hnsw:sync_threshold": sync_threshold,
        } }),
    )
    .await["id"]
        .as_str()
        .expect("collection id")
        .to_string();
    let upsert = format!("{databases}/{db}/collections/{collection}/upsert");
    let text = "lorem ipsum dolor sit amet ".repeat(30);
    let bodies: Vec<Value> = (0..records.div_ceil(batch))
        .map(|b| {
            let range = b * batch..((b + 1) * batch).min(records);
            json!({
                "ids": range.clone().map(|i| format!("doc{}:{i}", i / 100)).collect::<Vec<_>>(),
                "embeddings": range.clone().map(|i| vector(i as u64, 384)).collect::<Vec<_>>(),
                "documents": range.clone().map(|_| text.clone()).collect::<Vec<_>>(),
                "metadatas": range.map(|i| json!({
                    "document_id": format!("doc{}", i / 100),
                    "tenant_id": "floor",
                    "chunk_index": i % 100,
                    "file_name": "floor.md",
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let bodies = std::sync::Arc::new(bodies);
    for c in 0..clients {
        let (client, upsert, bodies) = (client.clone(), upsert.clone(), bodies.clone());
        tasks.spawn(async move {
            for body in bodies.iter().skip(c).step_by(clients) {
                post(&client, &upsert, body).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a client panicked");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "records": records,
            "batch": batch,
            "clients": clients,
            "hnsw_batch_size": hnsw_batch,
            "hnsw_sync_threshold": sync_threshold,
            "seconds": seconds,
            "records_per_second": records as f64 / seconds,
        })
    );
    let _ = client.delete(format!("{databases}/{db}")).send().await;
}
