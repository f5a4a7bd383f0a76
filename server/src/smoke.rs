//! `oyl-server smoke`: what the operator runs after a restore, before the API takes traffic
//! again (the original recovery procedure's "check health, run smoke tests"). It starts the API
//! as it would serve (the same configuration; migrated on start when `RUN_MIGRATIONS` is on) on a
//! loopback port, without the document worker, and asks it over HTTP:
//!
//! 1. `/readyz`, until every dependency answers `ok` (the database, and Redis and ChromaDB when
//!    configured), for at most the wait given;
//! 2. about the newest completed document: the vector store must hold exactly its `chunk_count`
//!    chunks (the vectors match the documents: ChromaDB came back with PostgreSQL), and a query
//!    to its teammate with the text of its first chunk must answer, with the document among the
//!    sources when its assistant was asked.
//!
//! Returns one line saying what held; an error names what did not.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::config::Config;
use crate::db::{self, Db};
use crate::jwt::{Role, claims_for};
use crate::startup::Application;
use crate::tenancy::TenantScope;

/// The query text: the start of the first chunk (the API takes up to 10 000 characters).
const QUERY_CHARS: usize = 1_000;
/// Between two `/readyz` calls while a dependency is still coming back.
const READY_POLL: Duration = Duration::from_secs(2);

pub async fn run(mut config: Config, wait: Duration) -> anyhow::Result<String> {
    let started = Instant::now();
    let db = Db::connect_lazy(&config)?;
    db.wait_until_reachable(wait).await?;
    db.close().await;
    config.host = "127.0.0.1".to_string();
    config.port = 0;
    config.worker_enabled = false;
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let checked = check(&state, &base, started + wait, wait).await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    checked
}

async fn check(
    state: &crate::state::AppState,
    base: &str,
    deadline: Instant,
    wait: Duration,
) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?;
    let ready = ready(&client, base, deadline, wait).await?;
    let Some(sample) = db::documents::newest_completed(&state.db).await? else {
        return Ok(format!(
            "smoke test passed: /readyz {ready}; no completed document to query"
        ));
    };
    let scope = TenantScope::trusted(sample.tenant_id);
    let document = sample.document_id;
    let store = state.rag.vectors.name();
    let chunks = state
        .rag
        .vectors
        .document_chunks(&scope, sample.knowledge_base_id, document)
        .await
        .with_context(|| {
            format!("cannot read document {document}'s chunks from the {store} store")
        })?;
    if i64::try_from(chunks.len()).ok() != Some(sample.chunk_count) {
        bail!(
            "the {store} vector store holds {} chunk(s) of document {document} ({:?}) where the \
             database records {}: the vectors do not match the documents",
            chunks.len(),
            sample.file_name,
            sample.chunk_count
        );
    }
    let text: String = chunks[0].1.chars().take(QUERY_CHARS).collect();
    let query = if text.trim().is_empty() {
        sample.file_name.clone()
    } else {
        text
    };
    let token = state.jwt.encode(&claims_for(
        "smoke-test",
        Role::Tenant,
        Some(sample.tenant_id),
        chrono::Utc::now().timestamp(),
        5,
    ));
    let asked = Instant::now();
    let teammate = sample.teammate_id;
    let response = client
        .post(format!("{base}/api/v1/teammates/{teammate}/query"))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .context("the query got no answer")?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("a query to teammate {teammate} answered HTTP {status}: {body}");
    }
    let has = |list: &str, key: Option<&str>, id: uuid::Uuid| {
        body[list].as_array().is_some_and(|items| {
            items.iter().any(|item| {
                key.map_or(item, |k| &item[k]).as_str() == Some(id.to_string().as_str())
            })
        })
    };
    let asked_assistant = has("selected_assistant_ids", None, sample.assistant_id);
    if asked_assistant && !has("sources", Some("document_id"), document) {
        bail!(
            "a query to teammate {teammate} with the text of document {document}'s first chunk \
             did not find it (sources: {})",
            body["sources"]
        );
    }
    Ok(format!(
        "smoke test passed: /readyz {ready}; document {document} has its {} chunk(s) in the \
         {store} store; a query to teammate {teammate} {} in {} ms",
        chunks.len(),
        if asked_assistant {
            "found it"
        } else {
            "answered (its assistant was not selected)"
        },
        asked.elapsed().as_millis()
    ))
}

/// Calls `/readyz` until it answers 200 with every dependency `ok` (or `deadline`, `wait` after
/// the start); the checks as `name ok`.
async fn ready(
    client: &reqwest::Client,
    base: &str,
    deadline: Instant,
    wait: Duration,
) -> anyhow::Result<String> {
    loop {
        let last = match client.get(format!("{base}/readyz")).send().await {
            Ok(r) => {
                let status = r.status();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if status.is_success() && body["status"] == "ok" {
                    let checks = body["checks"]
                        .as_object()
                        .map(|c| {
                            c.iter()
                                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("?")))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    return Ok(format!("ok ({checks})"));
                }
                format!("HTTP {status}: {body}")
            }
            Err(e) => format!("no answer: {e}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "/readyz did not report every dependency ok within {} s; last: {last}",
                wait.as_secs()
            );
        }
        tokio::time::sleep(READY_POLL).await;
    }
}
