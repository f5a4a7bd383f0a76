//! The control plane's own pace, without the operator: server-side applies every object of a
//! multi-document YAML file (what `oyl-operator render` prints for each platform) with a plain
//! client, `--concurrency` requests at a time, and waits until every Deployment among them has
//! all its replicas ready (kwok makes the pods ready), watching them from before the first apply.
//!
//!     kapply --server https://127.0.0.1:16443 --ca ca.crt --token-file token --namespace NS \
//!            --objects children.yaml [--concurrency 16] [--deadline 600]
//!
//! Prints one JSON line: objects, deployments, errors, and seconds from the start to the last
//! apply answered (`all_applied_s`) and to every Deployment ready (`all_ready_s`).
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use oyl_bench::arg;
use serde_json::{Value, json};

/// The REST path of a namespaced object: `/api/v1/...` or `/apis/GROUP/VERSION/...`.
fn path(object: &Value, namespace: &str) -> String {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind").to_ascii_lowercase();
    let plural = match kind.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{kind}s"),
    };
    let name = object["metadata"]["name"].as_str().expect("metadata.name");
    let group = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!("{group}/namespaces/{namespace}/{plural}/{name}")
}

fn ready(deployment: &Value) -> bool {
    let want = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = &deployment["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0)
        >= deployment["metadata"]["generation"].as_i64().unwrap_or(1);
    observed
        && status["readyReplicas"].as_i64().unwrap_or(0) >= want
        && status["updatedReplicas"].as_i64().unwrap_or(0) >= want
}

/// Seconds from `start` until every Deployment in `wanted` is ready, or None if the watch ends.
async fn wait_ready(
    watch: impl Future<Output = reqwest::Result<reqwest::Response>>,
    wanted: HashSet<String>,
    start: Instant,
) -> Option<f64> {
    let watch = watch.await.and_then(|r| r.error_for_status());
    let mut body = watch.expect("the watch of Deployments").bytes_stream();
    let (mut ready_now, mut line) = (HashSet::new(), Vec::new());
    while let Some(chunk) = body.next().await {
        for byte in chunk.expect("the watch stream") {
            if byte != b'\n' {
                line.push(byte);
                continue;
            }
            let event: Value = serde_json::from_slice(&line).expect("a watch event");
            line.clear();
            let object = &event["object"];
            let name = object["metadata"]["name"].as_str().unwrap_or("");
            if !wanted.contains(name) {
                continue;
            }
            if event["type"] != "DELETED" && ready(object) {
                ready_now.insert(name.to_string());
            } else {
                ready_now.remove(name);
            }
            if ready_now.len() == wanted.len() {
                return Some(start.elapsed().as_secs_f64());
            }
        }
    }
    None
}

/// Server-side applies one object; like client-go, retries what the apiserver asks to be retried
/// (429 from its priority and fairness, with Retry-After) and dropped connections. 0 when
/// applied, 1 when refused.
async fn apply(client: &reqwest::Client, url: &str, token: &str, body: String) -> usize {
    for attempt in 1..=20u32 {
        let answer = client
            .patch(url)
            .header("Authorization", token)
            .header("Content-Type", "application/apply-patch+yaml")
            .body(body.clone())
            .send()
            .await;
        let wait = match answer {
            Ok(a) if a.status().is_success() => return 0,
            Ok(a) if a.status() == 429 || a.status().is_server_error() => a
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(1u64),
            Ok(a) => {
                let status = a.status();
                eprintln!("{status}: {}", a.text().await.unwrap_or_default());
                return 1;
            }
            Err(e) if attempt < 20 => {
                eprintln!("retrying after: {e}");
                1
            }
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    eprintln!("{url}: still refused after 20 attempts");
    1
}

/// How many requests were retried.
static RETRIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = arg("--server", "");
    let namespace = arg("--namespace", "");
    let concurrency: usize = arg("--concurrency", "16").parse().expect("--concurrency");
    let deadline = Duration::from_secs(arg("--deadline", "600").parse().expect("--deadline"));
    let ca = std::fs::read(arg("--ca", "")).expect("--ca: a PEM file");
    let token = std::fs::read_to_string(arg("--token-file", "")).expect("--token-file");
    let token = format!("Bearer {}", token.trim());
    let text = std::fs::read_to_string(arg("--objects", "")).expect("--objects: a YAML file");
    let objects: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML document"))
        .filter(|o: &Value| !o.is_null())
        .collect();
    let deployments: HashSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).expect("PEM CA"))
        .build()
        .expect("an HTTP client");
    let start = Instant::now();

    // A watch without a resourceVersion first lists what exists, so starting it beside the
    // applies misses nothing; it ends when every Deployment is ready.
    let watcher = (!deployments.is_empty()).then(|| {
        let watch = client
            .get(format!(
                "{server}/apis/apps/v1/namespaces/{namespace}/deployments?watch=true"
            ))
            .header("Authorization", &token)
            .send();
        tokio::spawn(wait_ready(watch, deployments.clone(), start))
    });
    let headers = Arc::new((token, server, namespace));
    let errors: usize = stream::iter(objects.iter().cloned())
        .map(|object| {
            let (client, headers) = (client.clone(), headers.clone());
            async move {
                let (token, server, namespace) = &*headers;
                let url = format!(
                    "{server}{}?fieldManager=oyl-direct&force=true",
                    path(&object, namespace)
                );
                apply(&client, &url, token, object.to_string()).await
            }
        })
        .buffer_unordered(concurrency)
        .fold(0, |sum, e| async move { sum + e })
        .await;
    let all_applied_s = start.elapsed().as_secs_f64();
    let all_ready_s = match watcher {
        Some(w) => tokio::time::timeout(deadline.saturating_sub(start.elapsed()), w)
            .await
            .ok()
            .and_then(|r| r.expect("the watch task")),
        None => None,
    };
    println!(
        "{}",
        json!({
            "objects": objects.len(),
            "deployments": deployments.len(),
            "errors": errors,
            "retries": RETRIES.load(std::sync::atomic::Ordering::Relaxed),
            "all_applied_s": all_applied_s,
            "all_ready_s": all_ready_s,
        })
    );
    if errors > 0 || (all_ready_s.is_none() && !deployments.is_empty()) {
        std::process::exit(1);
    }
}
