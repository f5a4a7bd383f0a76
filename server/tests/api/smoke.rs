//! `oyl-server smoke` (what the operator runs after a restore before the API takes traffic):
//! against the configured stores (ChromaDB when `TEST_CHROMA_URL` is set, PostgreSQL when
//! `TEST_DATABASE_URL` is), on the test's own database.

use std::time::Duration;

use crate::helpers::{TestApp, chroma_url, raw_db, spawn_app, spawn_app_with};

/// A tenant with one processed document; returns (tenant id, knowledge base, document, chunks).
async fn one_document(app: &TestApp) -> (String, String, String, u64) {
    let t = app.create_tenant("smoke").await;
    let (_, _, asst) = app.create_tree(&t).await;
    let text = "The orbit of Mars takes 687 days. Its two moons are Phobos and Deimos. ".repeat(12);
    let doc = app
        .upload(&t.caller, &asst, "mars.txt", text.into_bytes())
        .await
        .id();
    let batch = app.process_batch(&t.caller, &asst).await;
    assert_eq!(batch.body["failed"], 0, "{}", batch.text);
    let got = app
        .get(&t.caller, &format!("/api/v1/documents/{doc}"))
        .await;
    let chunks = got.body["chunk_count"].as_u64().unwrap();
    assert!(chunks > 1, "{}", got.text);
    let kb = app
        .get(&t.caller, &format!("/api/v1/assistants/{asst}"))
        .await
        .body["knowledge_base_id"]
        .as_str()
        .unwrap()
        .to_string();
    (t.id, kb, doc, chunks)
}

async fn smoke(app: &TestApp, wait_seconds: u64) -> anyhow::Result<String> {
    oyl_server::smoke::run(app.config.clone(), Duration::from_secs(wait_seconds)).await
}

#[tokio::test]
async fn the_smoke_test_checks_readiness_and_finds_the_newest_document_by_a_query() {
    let app = spawn_app().await;
    let (_, _, doc, chunks) = one_document(&app).await;
    let passed = smoke(&app, 20).await.expect("the smoke test passes");
    let store = app.state.rag.vectors.name();
    assert!(
        passed.starts_with("smoke test passed: /readyz ok (") && passed.contains("database ok"),
        "{passed}"
    );
    assert!(
        passed.contains(&format!(
            "document {doc} has its {chunks} chunk(s) in the {store} store"
        )),
        "{passed}"
    );
    assert!(passed.contains("found it"), "{passed}");
}

#[tokio::test]
async fn an_empty_platform_passes_with_nothing_to_query() {
    let app = spawn_app().await;
    let passed = smoke(&app, 20).await.expect("the smoke test passes");
    assert!(
        passed.contains("no completed document to query"),
        "{passed}"
    );
}

/// The restore brought PostgreSQL back but not the vectors (ChromaDB from another time): the
/// smoke test fails naming the document and both counts, so the API stays down.
#[tokio::test]
async fn vectors_that_do_not_match_the_documents_fail_it_naming_the_document() {
    let app = spawn_app().await;
    let (tenant, kb, doc, chunks) = one_document(&app).await;
    let doc_id = uuid::Uuid::parse_str(&doc).unwrap();
    if chroma_url().is_some() {
        let scope =
            oyl_server::tenancy::TenantScope::trusted(uuid::Uuid::parse_str(&tenant).unwrap());
        app.state
            .rag
            .vectors
            .delete_document(&scope, uuid::Uuid::parse_str(&kb).unwrap(), doc_id)
            .await
            .unwrap();
    } else {
        let db = raw_db(&app);
        oyl_server::with_pool!(db, pool => {
            sqlx::query("DELETE FROM chunks WHERE document_id = $1 AND chunk_index > 0")
                .bind(doc_id)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .unwrap();
    }
    let left = if chroma_url().is_some() { 0 } else { 1 };
    let failed = smoke(&app, 20).await.expect_err("the smoke test fails");
    let message = format!("{failed:#}");
    assert!(
        message.contains(&format!("holds {left} chunk(s) of document {doc}"))
            && message.contains(&format!("the database records {chunks}")),
        "{message}"
    );
}

/// A dependency that does not come back: the smoke test gives up after its wait, saying which.
#[tokio::test]
async fn a_dependency_that_stays_down_fails_it_after_the_wait() {
    let app = spawn_app_with(&[("CHROMA_HOST", "http://127.0.0.1:9")]).await;
    let started = std::time::Instant::now();
    let failed = smoke(&app, 3).await.expect_err("the smoke test fails");
    let message = format!("{failed:#}");
    assert!(
        message.contains("/readyz did not report every dependency ok within 3 s")
            && message.contains("\"chroma\":\"unreachable"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// `oyl-server smoke --report FILE` writes the outcome there (the operator passes the termination
/// message file and shows it in the status), passed or failed.
#[tokio::test]
async fn the_command_writes_its_outcome_to_the_report_file() {
    use oyl_server::cli::{Cli, Command, run};
    let app = spawn_app().await;
    let report = app.dir.path().join("report");
    let smoke = |wait_seconds| Cli {
        command: Some(Command::Smoke {
            wait_seconds,
            report: Some(report.clone()),
        }),
    };
    run(smoke(20), app.config.clone()).await.unwrap();
    let passed = std::fs::read_to_string(&report).unwrap();
    assert!(
        passed.starts_with("smoke test passed: /readyz ok"),
        "{passed}"
    );

    let down = spawn_app_with(&[("CHROMA_HOST", "http://127.0.0.1:9")]).await;
    assert!(run(smoke(1), down.config.clone()).await.is_err());
    let failed = std::fs::read_to_string(&report).unwrap();
    assert!(
        failed.starts_with("smoke test failed: /readyz did not report"),
        "{failed}"
    );
}
