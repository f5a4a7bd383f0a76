use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn assistant_crud() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, tm, _) = app.create_tree(&t).await;
    let collection = format!("/api/v1/teammates/{tm}/assistants");

    let created = app
        .post(
            &t.caller,
            &collection,
            json!({"name": "Billing", "model": "llama3.1:8b"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        (
            created.body["model"].as_str(),
            created.body["teammate_id"].as_str()
        ),
        (Some("llama3.1:8b"), Some(tm.as_str()))
    );
    assert!(created.body["knowledge_base_id"].is_string());
    let path = format!("/api/v1/assistants/{}", created.id());
    assert_eq!(app.get(&t.caller, &path).await.body, created.body);

    let list = app.get(&t.caller, &collection).await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["asst", "Billing"], "creation order");

    let patched = app
        .patch(&t.caller, &path, json!({"name": "Invoices"}))
        .await;
    assert_eq!(
        (
            patched.body["name"].as_str(),
            patched.body["model"].as_str()
        ),
        (Some("Invoices"), Some("llama3.1:8b"))
    );
    let reset = app.put(&t.caller, &path, json!({"model": null})).await;
    assert_eq!(
        (
            reset.status,
            reset.body["model"].is_null(),
            reset.body["name"].as_str()
        ),
        (200, true, Some("Invoices"))
    );
    assert_eq!(
        reset.body["knowledge_base_id"],
        created.body["knowledge_base_id"]
    );
    assert_eq!(
        app.patch(&t.caller, &path, json!({"model": ""}))
            .await
            .status,
        422
    );

    assert_eq!(app.delete(&t.caller, &path).await.status, 204);
    assert_eq!(app.get(&t.caller, &path).await.status, 404);
    assert_eq!(app.get(&t.caller, &collection).await.body["total"], 1);
    assert_eq!(
        app.post(
            &t.caller,
            "/api/v1/teammates/nope/assistants",
            json!({"name": "x"})
        )
        .await
        .status,
        404
    );
    let unknown = uuid::Uuid::new_v4();
    let orphan = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{unknown}/assistants"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(
        (orphan.status, orphan.body["detail"].as_str()),
        (404, Some("Teammate not found"))
    );
}

#[tokio::test]
async fn instruction_is_upserted() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, _, asst) = app.create_tree(&t).await;
    let path = format!("/api/v1/assistants/{asst}/instruction");

    let none = app.get(&t.caller, &path).await;
    assert_eq!(
        (none.status, none.body["detail"].as_str()),
        (404, Some("Instruction not found"))
    );

    let first = app
        .post(
            &t.caller,
            &path,
            json!({"system_prompt": "Answer briefly."}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(
        (
            first.body["assistant_id"].as_str(),
            first.body["system_prompt"].as_str()
        ),
        (Some(asst.as_str()), Some("Answer briefly."))
    );
    let second = app
        .post(
            &t.caller,
            &path,
            json!({"system_prompt": "Answer in French."}),
        )
        .await;
    assert_eq!(second.status, 201);
    assert_eq!(
        second.id(),
        first.id(),
        "one instruction per assistant, replaced in place"
    );
    assert_eq!(
        app.get(&t.caller, &path).await.body["system_prompt"],
        "Answer in French."
    );

    let put = app
        .put(&t.caller, &path, json!({"system_prompt": "PUT"}))
        .await;
    assert_eq!(
        (put.status, put.body["system_prompt"].as_str()),
        (200, Some("PUT"))
    );
    let patch = app
        .patch(&t.caller, &path, json!({"system_prompt": "PATCH"}))
        .await;
    assert_eq!(
        (patch.status, patch.body["system_prompt"].as_str()),
        (200, Some("PATCH"))
    );

    let empty = app
        .post(&t.caller, &path, json!({"system_prompt": " "}))
        .await;
    assert_eq!(
        (empty.status, empty.locs()),
        (422, vec![r#"["body","system_prompt"]"#.to_string()])
    );
    let missing = app.post(&t.caller, &path, json!({})).await;
    assert_eq!(missing.body["detail"][0]["type"], "missing");

    assert_eq!(app.delete(&t.caller, &path).await.status, 204);
    assert_eq!(app.delete(&t.caller, &path).await.status, 404);
    let unknown = uuid::Uuid::new_v4();
    let no_assistant = app
        .post(
            &t.caller,
            &format!("/api/v1/assistants/{unknown}/instruction"),
            json!({"system_prompt": "x"}),
        )
        .await;
    assert_eq!(
        (no_assistant.status, no_assistant.body["detail"].as_str()),
        (404, Some("Assistant not found"))
    );
    assert_eq!(
        app.get(
            &t.caller,
            &format!("/api/v1/assistants/{unknown}/instruction")
        )
        .await
        .body["detail"],
        "Assistant not found"
    );
}

#[tokio::test]
async fn deleting_a_teammate_or_assistant_cascades() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (_, tm, asst) = app.create_tree(&t).await;
    let second = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/assistants"),
            json!({"name": "second"}),
        )
        .await
        .id();
    let doc = app
        .upload(&t.caller, &second, "a.txt", b"alpha".to_vec())
        .await
        .id();
    assert_eq!(
        app.post(
            &t.caller,
            &format!("/api/v1/assistants/{second}/instruction"),
            json!({"system_prompt": "x"})
        )
        .await
        .status,
        201
    );

    // Deleting one assistant removes its document and instruction, not its sibling.
    assert_eq!(
        app.delete(&t.caller, &format!("/api/v1/assistants/{second}"))
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/documents/{doc}"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/assistants/{asst}"))
            .await
            .status,
        200
    );

    let doc2 = app
        .upload(&t.caller, &asst, "b.txt", b"beta".to_vec())
        .await
        .id();
    assert_eq!(
        app.delete(&t.caller, &format!("/api/v1/teammates/{tm}"))
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/assistants/{asst}"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/documents/{doc2}"))
            .await
            .status,
        404
    );
    let uploads = app.dir.path().join("uploads").join(&t.id);
    let leftovers: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "no stored files remain: {leftovers:?}"
    );
}
