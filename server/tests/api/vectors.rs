//! The vector store actually holds what the documents say, and follows deletes: ChromaDB when
//! `TEST_CHROMA_URL` is set, the embedded store otherwise.

use serde_json::json;

use crate::helpers::{
    Caller, TestApp, chroma_record_ids, chroma_url, raw_db, spawn_app, spawn_app_with,
};

/// Records in the configured store for a knowledge base (or one of its documents).
async fn stored(app: &TestApp, tenant: &str, kb: &str, document: Option<&str>) -> Option<usize> {
    if chroma_url().is_some() {
        return chroma_record_ids(tenant, kb, document)
            .await
            .map(|ids| ids.len());
    }
    let db = raw_db(app);
    let kb = uuid::Uuid::parse_str(kb).unwrap();
    let doc = document.map(|d| uuid::Uuid::parse_str(d).unwrap());
    let n: i64 = oyl_server::with_pool!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM chunks WHERE knowledge_base_id = $1 AND ($2 IS NULL OR document_id = $2)")
            .bind(kb)
            .bind(doc)
            .fetch_one(pool)
            .await
    })
    .unwrap();
    // The embedded store has no per-collection existence: an empty one reads as "gone".
    (n > 0).then_some(n as usize)
}

#[tokio::test]
async fn vectors_are_stored_once_and_follow_every_delete() {
    let app = spawn_app().await;
    let expected_store = if chroma_url().is_some() {
        "chroma"
    } else {
        "embedded"
    };
    assert_eq!(app.state.rag.vectors.name(), expected_store);
    let t = app.create_tenant("t").await;
    let (ws, tm, asst) = app.create_tree(&t).await;
    let kb = app
        .get(&t.caller, &format!("/api/v1/assistants/{asst}"))
        .await
        .body["knowledge_base_id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = app
        .upload(
            &t.caller,
            &asst,
            "a.txt",
            "Alpha facts. ".repeat(80).into_bytes(),
        )
        .await
        .id();
    let b = app
        .upload(
            &t.caller,
            &asst,
            "b.txt",
            "Beta facts. ".repeat(80).into_bytes(),
        )
        .await
        .id();
    app.process_batch(&t.caller, &asst).await;
    let chunks = |id: &str| {
        let app = &app;
        let caller = t.caller.clone();
        let id = id.to_string();
        async move {
            app.get(&caller, &format!("/api/v1/documents/{id}"))
                .await
                .body["chunk_count"]
                .as_u64()
                .unwrap() as usize
        }
    };
    let (ca, cb) = (chunks(&a).await, chunks(&b).await);
    assert!(ca > 1 && cb > 1);
    assert_eq!(stored(&app, &t.id, &kb, Some(&a)).await, Some(ca));
    assert_eq!(stored(&app, &t.id, &kb, None).await, Some(ca + cb));

    // Processing again replaces, never adds.
    app.post(
        &t.caller,
        &format!("/api/v1/assistants/{asst}/knowledge/process-batch"),
        json!({"document_ids": [a, a, b]}),
    )
    .await;
    assert_eq!(stored(&app, &t.id, &kb, None).await, Some(ca + cb));

    assert_eq!(
        app.delete(&t.caller, &format!("/api/v1/documents/{a}"))
            .await
            .status,
        204
    );
    assert_eq!(stored(&app, &t.id, &kb, Some(&a)).await.unwrap_or(0), 0);
    assert_eq!(stored(&app, &t.id, &kb, None).await, Some(cb));

    // Deleting up the tree removes the rest (assistant here; workspace and tenant below).
    assert_eq!(
        app.delete(&t.caller, &format!("/api/v1/assistants/{asst}"))
            .await
            .status,
        204
    );
    assert_eq!(stored(&app, &t.id, &kb, None).await, None);

    let asst2 = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/assistants"),
            json!({"name": "two"}),
        )
        .await
        .id();
    let kb2 = app
        .get(&t.caller, &format!("/api/v1/assistants/{asst2}"))
        .await
        .body["knowledge_base_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.upload(&t.caller, &asst2, "c.txt", b"Gamma facts.".to_vec())
        .await;
    app.process_batch(&t.caller, &asst2).await;
    assert_eq!(stored(&app, &t.id, &kb2, None).await, Some(1));
    assert_eq!(
        app.delete(&t.caller, &format!("/api/v1/workspaces/{ws}"))
            .await
            .status,
        204
    );
    assert_eq!(stored(&app, &t.id, &kb2, None).await, None);

    let (_, _, asst3) = app.create_tree(&t).await;
    let kb3 = app
        .get(&t.caller, &format!("/api/v1/assistants/{asst3}"))
        .await
        .body["knowledge_base_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.upload(&t.caller, &asst3, "d.txt", b"Delta facts.".to_vec())
        .await;
    app.process_batch(&t.caller, &asst3).await;
    assert_eq!(stored(&app, &t.id, &kb3, None).await, Some(1));
    assert_eq!(
        app.delete(&app.admin_in(&t.id), &format!("/api/v1/tenants/{}", t.id))
            .await
            .status,
        204
    );
    assert_eq!(stored(&app, &t.id, &kb3, None).await, None);
}

#[tokio::test]
async fn sources_carry_current_names_and_never_deleted_documents() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, tm, asst) = app.create_tree(&t).await;
    let doc = app
        .upload(
            &t.caller,
            &asst,
            "old-name.txt",
            b"The vault combination is 7-3-9.".to_vec(),
        )
        .await
        .id();
    app.process_batch(&t.caller, &asst).await;
    app.patch(
        &t.caller,
        &format!("/api/v1/documents/{doc}"),
        json!({"file_name": "new-name.txt"}),
    )
    .await;
    let ask = json!({"query": "What is the vault combination?"});
    let resp = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            ask.clone(),
        )
        .await;
    assert_eq!(
        resp.body["sources"][0]["file_name"], "new-name.txt",
        "{}",
        resp.text
    );
    assert_eq!(
        app.delete(&t.caller, &format!("/api/v1/documents/{doc}"))
            .await
            .status,
        204
    );
    let resp = app
        .post(&t.caller, &format!("/api/v1/teammates/{tm}/query"), ask)
        .await;
    assert!(
        resp.body["sources"].as_array().unwrap().is_empty(),
        "{}",
        resp.text
    );
    assert!(!resp.text.contains("7-3-9"));
}

#[tokio::test]
async fn an_unreachable_chroma_degrades_readiness_and_fails_loudly() {
    // Nothing listens on port 1.
    let app = spawn_app_with(&[("CHROMA_HOST", "127.0.0.1"), ("CHROMA_PORT", "1")]).await;
    assert_eq!(app.state.rag.vectors.name(), "chroma");
    let ready = app.get(&Caller::anonymous(), "/readyz").await;
    assert_eq!(
        (ready.status, ready.body["status"].as_str()),
        (200, Some("degraded")),
        "{}",
        ready.text
    );
    assert!(
        ready.body["checks"]["chroma"]
            .as_str()
            .unwrap()
            .starts_with("unreachable")
    );
    let t = app.create_tenant("t").await;
    let (_, tm, asst) = app.create_tree(&t).await;
    app.upload(&t.caller, &asst, "a.txt", b"text".to_vec())
        .await;
    let batch = app.process_batch(&t.caller, &asst).await;
    assert!(
        batch.body["details"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("indexing failed"),
        "{}",
        batch.text
    );
    let query = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "text"}),
        )
        .await;
    assert_eq!(
        (query.status, query.body["detail"].as_str()),
        (503, Some("The vector store provider is unavailable")),
        "{}",
        query.text
    );
}
