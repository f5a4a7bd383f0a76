use serde_json::json;

use crate::helpers::{Caller, files, spawn_app, spawn_app_with};

#[tokio::test]
async fn upload_stores_under_a_generated_name() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, _, asst) = app.create_tree(&t).await;
    let kb = app
        .get(&t.caller, &format!("/api/v1/assistants/{asst}"))
        .await
        .body["knowledge_base_id"]
        .as_str()
        .unwrap()
        .to_string();

    let resp = app
        .upload(
            &t.caller,
            &asst,
            "../../../etc/passwd.txt",
            b"root:x:0:0".to_vec(),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    assert_eq!(
        resp.body["file_name"], "passwd.txt",
        "directories are stripped from the client's name"
    );
    assert_eq!(
        (resp.body["file_type"].as_str(), resp.body["kind"].as_str()),
        (Some("text/plain"), Some("text")),
        "file_type is the media type, as the original answered"
    );
    assert_eq!(resp.body["content_type"], "text/plain");
    assert_eq!(resp.body["size_bytes"], 10);
    assert_eq!(resp.body["processed_status"], "pending");
    assert_eq!(resp.body["knowledge_base_id"], kb);
    assert!(
        resp.body.get("storage_key").is_none(),
        "internal paths are not exposed"
    );

    let stored = app
        .dir
        .path()
        .join("uploads")
        .join(&t.id)
        .join(&kb)
        .join(resp.id());
    assert_eq!(std::fs::read(&stored).unwrap(), b"root:x:0:0");
    let names: Vec<String> = std::fs::read_dir(stored.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [resp.id()],
        "only the generated name, no temp files left"
    );
    assert!(!app.dir.path().join("etc").exists());

    let weird = app
        .upload(&t.caller, &asst, "..\\..\\x.md", b"# x".to_vec())
        .await;
    assert_eq!(
        (
            weird.status,
            weird.body["file_name"].as_str(),
            weird.body["file_type"].as_str(),
            weird.body["kind"].as_str()
        ),
        (201, Some("x.md"), Some("text/markdown"), Some("markdown"))
    );
}

#[tokio::test]
async fn upload_rejects_unsupported_empty_and_missing_files() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, _, asst) = app.create_tree(&t).await;
    let png = app
        .upload(&t.caller, &asst, "photo.png", vec![0x89, b'P', b'N', b'G'])
        .await;
    assert_eq!(png.status, 415, "{}", png.text);
    assert!(
        png.body["detail"]
            .as_str()
            .unwrap()
            .contains("Unsupported file type")
    );
    let empty = app.upload(&t.caller, &asst, "empty.txt", Vec::new()).await;
    assert_eq!(
        (empty.status, empty.locs()),
        (422, vec![r#"["body","file"]"#.to_string()])
    );

    let form = reqwest::multipart::Form::new().text("other", "value");
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/assistants/{asst}/knowledge/upload")))
        .bearer_auth(t.caller.token.as_ref().unwrap())
        .header("x-tenant-id", &t.id)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let resp = crate::helpers::into_resp(resp).await;
    assert_eq!(
        (resp.status, resp.locs()),
        (422, vec![r#"["body","file"]"#.to_string()])
    );
    let json_body = app
        .post(
            &t.caller,
            &format!("/api/v1/assistants/{asst}/knowledge/upload"),
            json!({"file": "x"}),
        )
        .await;
    assert_eq!(json_body.status, 422);
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        app.upload(&t.caller, &unknown.to_string(), "a.txt", b"x".to_vec())
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(
            &t.caller,
            &format!("/api/v1/assistants/{asst}/knowledge/status")
        )
        .await
        .body["total"],
        0
    );
}

#[tokio::test]
async fn uploads_over_the_limit_are_413_and_leave_nothing_behind() {
    let app = spawn_app_with(&[("MAX_UPLOAD_BYTES", "1024")]).await;
    let t = app.create_tenant("t").await;
    let (_, _, asst) = app.create_tree(&t).await;
    assert_eq!(
        app.upload(&t.caller, &asst, "ok.txt", vec![b'a'; 1024])
            .await
            .status,
        201
    );
    let big = app
        .upload(&t.caller, &asst, "big.txt", vec![b'a'; 1025])
        .await;
    assert_eq!(big.status, 413, "{}", big.text);
    assert!(big.body["detail"].as_str().unwrap().contains("1024"));
    let huge = app
        .upload(&t.caller, &asst, "huge.txt", vec![b'a'; 512 * 1024])
        .await;
    assert_eq!(
        huge.status, 413,
        "beyond the multipart slack too: {}",
        huge.text
    );
    let status = app
        .get(
            &t.caller,
            &format!("/api/v1/assistants/{asst}/knowledge/status"),
        )
        .await;
    assert_eq!(status.body["total"], 1);
    let kb = status.body["knowledge_base_id"].as_str().unwrap();
    let files = std::fs::read_dir(app.dir.path().join("uploads").join(&t.id).join(kb))
        .unwrap()
        .count();
    assert_eq!(files, 1, "rejected uploads leave no temp files");
}

#[tokio::test]
async fn process_batch_and_status() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, _, asst) = app.create_tree(&t).await;
    let base = format!("/api/v1/assistants/{asst}/knowledge");
    let text = app
        .upload(
            &t.caller,
            &asst,
            "policy.txt",
            "Refunds are issued within 14 days. "
                .repeat(30)
                .into_bytes(),
        )
        .await
        .id();
    let html = app
        .upload(
            &t.caller,
            &asst,
            "page.html",
            b"<html><body><p>Office hours: 9 to 5.</p><script>x()</script></body></html>".to_vec(),
        )
        .await
        .id();
    // Text is extracted at upload: a broken file fails at once, with the reason.
    let broken = app
        .upload(&t.caller, &asst, "data.json", b"{not json".to_vec())
        .await;
    assert_eq!(
        (broken.status, broken.body["processed_status"].as_str()),
        (201, Some("failed")),
        "{}",
        broken.text
    );
    assert!(
        broken.body["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    let broken = broken.id();

    let status = app.get(&t.caller, &format!("{base}/status")).await;
    assert_eq!(status.status, 200);
    let counts = |s: &serde_json::Value| {
        ["total", "pending", "processing", "completed", "failed"].map(|k| s[k].as_i64().unwrap())
    };
    assert_eq!(counts(&status.body), [3, 2, 0, 0, 1]);
    assert_eq!(status.body["assistant_id"], asst);
    assert_eq!(status.body["documents"].as_array().unwrap().len(), 3);

    let batch = app
        .post(&t.caller, &format!("{base}/process-batch"), json!({}))
        .await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    assert_eq!(
        (
            batch.body["processed"].as_i64(),
            batch.body["failed"].as_i64()
        ),
        (Some(2), Some(0))
    );
    let details = batch.body["details"].as_array().unwrap().clone();
    let detail = |id: &str| {
        details
            .iter()
            .find(|d| d["document_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(detail(&text)["status"], "completed");
    assert!(
        detail(&text)["chunks"].as_i64().unwrap() > 1,
        "1000+ characters at CHUNK_SIZE=200 give several chunks"
    );
    assert_eq!(detail(&html)["status"], "completed");

    let html_doc = app
        .get(&t.caller, &format!("/api/v1/documents/{html}"))
        .await;
    assert_eq!(
        (
            html_doc.body["processed_status"].as_str(),
            html_doc.body["chunk_count"].as_i64()
        ),
        (Some("completed"), Some(1))
    );
    let status = app.get(&t.caller, &format!("{base}/status")).await;
    assert_eq!(counts(&status.body), [3, 0, 0, 2, 1]);

    // Nothing pending: an empty body processes nothing.
    let again = app
        .send(
            &t.caller,
            reqwest::Method::POST,
            &format!("{base}/process-batch"),
            None,
        )
        .await;
    assert_eq!(
        (
            again.status,
            again.body["processed"].as_i64(),
            again.body["details"].as_array().map(Vec::len)
        ),
        (200, Some(0), Some(0))
    );

    // Named documents are processed again (completed and failed ones too); unknown ids are reported.
    let unknown = uuid::Uuid::new_v4().to_string();
    let named = app
        .post(
            &t.caller,
            &format!("{base}/process-batch"),
            json!({"document_ids": [text, unknown, broken]}),
        )
        .await;
    assert_eq!(
        (
            named.body["processed"].as_i64(),
            named.body["failed"].as_i64()
        ),
        (Some(1), Some(1)),
        "{}",
        named.text
    );
    let statuses: Vec<&str> = named.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["completed", "not_found", "failed"],
        "in the order asked for"
    );
    assert!(
        named.body["details"][2]["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    let chunks = app
        .get(&t.caller, &format!("/api/v1/documents/{text}"))
        .await
        .body["chunk_count"]
        .clone();
    assert_eq!(
        chunks,
        detail(&text)["chunks"],
        "re-processing replaces chunks rather than adding more"
    );
    let bad_ids = app
        .post(
            &t.caller,
            &format!("{base}/process-batch"),
            json!({"document_ids": ["x"]}),
        )
        .await;
    assert_eq!(
        (bad_ids.status, bad_ids.locs()),
        (422, vec![r#"["body","document_ids",0]"#.to_string()])
    );
}

#[tokio::test]
async fn corrupt_files_fail_with_a_reason_and_the_server_keeps_going() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, _, asst) = app.create_tree(&t).await;
    let mut truncated = files::pdf(&["The secret is 42."]);
    truncated.truncate(truncated.len() / 2);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("fake.pdf", b"this is not a pdf".to_vec(), "not a PDF"),
        ("truncated.pdf", truncated, "PDF"),
        ("fake.docx", b"PK\x03\x04 broken zip".to_vec(), "not a DOCX"),
        (
            "nodoc.docx",
            files::docx_without_document(),
            "word/document.xml is missing",
        ),
        ("blank.txt", b"   \n\t ".to_vec(), "no text"),
    ];
    for (name, bytes, reason) in cases {
        let resp = app.upload(&t.caller, &asst, name, bytes).await;
        assert_eq!(resp.status, 201, "{name}: {}", resp.text);
        assert_eq!(
            resp.body["processed_status"], "failed",
            "{name}: {}",
            resp.text
        );
        assert!(
            resp.body["error"].as_str().unwrap_or("").contains(reason),
            "{name}: {}",
            resp.text
        );
    }
    assert_eq!(app.get(&Caller::anonymous(), "/health").await.status, 200);
    let ok = app
        .upload(&t.caller, &asst, "fine.txt", b"still working".to_vec())
        .await;
    assert_eq!(ok.body["processed_status"], "pending");
}

#[tokio::test]
async fn text_markdown_pdf_and_docx_facts_are_found() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, tm, asst) = app.create_tree(&t).await;
    app.patch(
        &t.caller,
        &format!("/api/v1/teammates/{tm}"),
        json!({"orchestration_config": {"strategy": "weighted"}}),
    )
    .await;
    let uploads: Vec<(&str, Vec<u8>)> = vec![
        (
            "capital.txt",
            b"General notes.\nThe capital of Freedonia is Marxville.\nNothing else here.".to_vec(),
        ),
        (
            "fleet.md",
            b"# Fleet\n\nOur fleet has exactly seventeen zeppelins.\n\n## Other\nMisc.".to_vec(),
        ),
        (
            "budget.pdf",
            files::pdf(&["Annual report.", "The marketing budget is 81000 euros."]),
        ),
        (
            "mascot.docx",
            files::docx(&["Company facts.", "The company mascot is a purple octopus."]),
        ),
    ];
    for (name, bytes) in uploads {
        let resp = app.upload(&t.caller, &asst, name, bytes).await;
        assert_eq!(
            (resp.status, resp.body["processed_status"].as_str()),
            (201, Some("pending")),
            "{name}: {}",
            resp.text
        );
    }
    let batch = app.process_batch(&t.caller, &asst).await;
    assert_eq!(
        (
            batch.body["processed"].as_i64(),
            batch.body["failed"].as_i64()
        ),
        (Some(4), Some(0)),
        "{}",
        batch.text
    );

    for (question, file, fact) in [
        (
            "What is the capital of Freedonia?",
            "capital.txt",
            "Marxville",
        ),
        (
            "How many zeppelins does the fleet have?",
            "fleet.md",
            "seventeen zeppelins",
        ),
        ("What is the marketing budget?", "budget.pdf", "81000 euros"),
        (
            "What is the company mascot?",
            "mascot.docx",
            "purple octopus",
        ),
    ] {
        let resp = app
            .post(
                &t.caller,
                &format!("/api/v1/teammates/{tm}/query"),
                json!({"query": question}),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert!(
            resp.body["answer"].as_str().unwrap().contains(fact),
            "{question}: {}",
            resp.text
        );
        assert_eq!(
            resp.body["sources"][0]["file_name"], file,
            "{question}: {}",
            resp.text
        );
    }
}

#[tokio::test]
async fn the_worker_processes_uploads_in_the_background() {
    let app = spawn_app_with(&[("WORKER_ENABLED", "true")]).await;
    let t = app.create_tenant("t").await;
    let (_, _, asst) = app.create_tree(&t).await;
    for i in 0..5 {
        let resp = app
            .upload(
                &t.caller,
                &asst,
                &format!("n{i}.txt"),
                format!("Note number {i}. ").repeat(40).into_bytes(),
            )
            .await;
        assert_eq!(resp.status, 201);
    }
    // Nobody calls process-batch: the worker picks them up.
    let status = app.wait_until_processed(&t.caller, &asst).await;
    assert_eq!(
        (status["completed"].as_i64(), status["failed"].as_i64()),
        (Some(5), Some(0)),
        "{status}"
    );
    for doc in status["documents"].as_array().unwrap() {
        assert!(doc["chunk_count"].as_i64().unwrap() >= 1);
    }
    let metrics = app.get(&Caller::anonymous(), "/metrics").await.text;
    assert!(
        metrics.contains("documents_processed_total{status=\"completed\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("document_queue_depth 0"));

    // process-batch racing the worker still reports every document's final state.
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            app.upload(
                &t.caller,
                &asst,
                &format!("m{i}.txt"),
                format!("More text {i}. ").repeat(200).into_bytes(),
            )
            .await
            .id(),
        );
    }
    let batch = app
        .post(
            &t.caller,
            &format!("/api/v1/assistants/{asst}/knowledge/process-batch"),
            json!({"document_ids": ids}),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    let statuses: Vec<&str> = batch.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["completed"; 8], "{}", batch.text);
    let status = app.wait_until_processed(&t.caller, &asst).await;
    assert_eq!(status["completed"], 13);
}

#[tokio::test]
async fn documents_list_rename_and_delete() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, _, asst) = app.create_tree(&t).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            app.upload(
                &t.caller,
                &asst,
                &format!("doc{i}.csv"),
                b"a,b\n1,2".to_vec(),
            )
            .await
            .id(),
        );
    }
    let list = app
        .get(
            &t.caller,
            &format!("/api/v1/assistants/{asst}/knowledge/documents?limit=2"),
        )
        .await;
    assert_eq!(
        (
            list.body["total"].as_i64(),
            list.body["items"].as_array().unwrap().len()
        ),
        (Some(3), 2)
    );
    assert_eq!(list.body["items"][0]["file_name"], "doc0.csv");
    let filtered = app
        .get(
            &t.caller,
            &format!("/api/v1/assistants/{asst}/knowledge/documents?name=doc2.csv"),
        )
        .await;
    assert_eq!(filtered.body["items"][0]["id"], ids[2]);

    let path = format!("/api/v1/documents/{}", ids[0]);
    let renamed = app
        .patch(&t.caller, &path, json!({"file_name": "renamed.csv"}))
        .await;
    assert_eq!(
        (renamed.status, renamed.body["file_name"].as_str()),
        (200, Some("renamed.csv"))
    );
    let put = app
        .put(&t.caller, &path, json!({"file_name": "../x/put.csv"}))
        .await;
    assert_eq!(put.body["file_name"], "put.csv");
    assert_eq!(
        app.patch(&t.caller, &path, json!({"file_name": ""}))
            .await
            .status,
        422
    );

    let kb = renamed.body["knowledge_base_id"].as_str().unwrap();
    let stored = app
        .dir
        .path()
        .join("uploads")
        .join(&t.id)
        .join(kb)
        .join(&ids[0]);
    assert!(stored.exists());
    assert_eq!(app.delete(&t.caller, &path).await.status, 204);
    assert!(
        !stored.exists(),
        "the stored bytes are deleted with the document"
    );
    assert_eq!(app.get(&t.caller, &path).await.status, 404);
    assert_eq!(app.delete(&t.caller, &path).await.status, 404);
    assert_eq!(
        app.get(&t.caller, "/api/v1/documents/not-an-id")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn file_type_is_the_media_type_the_client_gave_the_part() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, _, asst) = app.create_tree(&t).await;
    let part = reqwest::multipart::Part::bytes(b"# Notes\nhello".to_vec())
        .file_name("notes")
        .mime_str("text/markdown")
        .unwrap();
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/assistants/{asst}/knowledge/upload")))
        .bearer_auth(t.caller.token.as_ref().unwrap())
        .header("x-tenant-id", &t.id)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let resp = crate::helpers::into_resp(resp).await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    assert_eq!(
        (resp.body["file_type"].as_str(), resp.body["kind"].as_str()),
        (Some("text/markdown"), Some("markdown")),
        "no extension: the kind comes from the declared media type"
    );
    // The same fields wherever a document is shown.
    let id = resp.id();
    for shown in [
        app.get(&t.caller, &format!("/api/v1/documents/{id}"))
            .await
            .body,
        app.get(
            &t.caller,
            &format!("/api/v1/assistants/{asst}/knowledge/status"),
        )
        .await
        .body["documents"][0]
            .clone(),
    ] {
        assert_eq!(
            (shown["file_type"].as_str(), shown["kind"].as_str()),
            (Some("text/markdown"), Some("markdown")),
            "{shown}"
        );
    }
}
