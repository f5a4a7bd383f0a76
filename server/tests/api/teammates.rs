use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn teammate_crud_with_orchestration_config() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let ws = app
        .post(
            &t.caller,
            &format!("/api/v1/tenants/{}/workspaces", t.id),
            json!({"name": "ws"}),
        )
        .await
        .id();
    let collection = format!("/api/v1/workspaces/{ws}/teammates");

    let plain = app
        .post(&t.caller, &collection, json!({"name": "plain"}))
        .await;
    assert_eq!(plain.status, 201, "{}", plain.text);
    assert!(plain.body["orchestration_config"].is_null());
    assert_eq!(plain.body["workspace_id"], ws);

    let config =
        json!({"strategy": "parallel", "weights_by_name": {"a": 2.5}, "max_assistants": 2});
    let rich = app
        .post(
            &t.caller,
            &collection,
            json!({"name": "rich", "orchestration_config": config}),
        )
        .await;
    assert_eq!(rich.status, 201, "{}", rich.text);
    assert_eq!(rich.body["orchestration_config"], config);
    let path = format!("/api/v1/teammates/{}", rich.id());
    assert_eq!(
        app.get(&t.caller, &path).await.body["orchestration_config"],
        config
    );

    let list = app.get(&t.caller, &collection).await;
    assert_eq!(list.body["total"], 2);
    assert_eq!(list.body["items"][0]["name"], "plain");

    let renamed = app
        .patch(&t.caller, &path, json!({"name": "renamed"}))
        .await;
    assert_eq!(
        (
            renamed.body["name"].as_str(),
            &renamed.body["orchestration_config"]
        ),
        (Some("renamed"), &config),
        "untouched fields stay"
    );
    let new_config = json!({"strategy": "sequential"});
    let updated = app
        .put(
            &t.caller,
            &path,
            json!({"orchestration_config": new_config}),
        )
        .await;
    assert_eq!(
        (updated.status, &updated.body["orchestration_config"]),
        (200, &new_config)
    );
    assert_eq!(updated.body["name"], "renamed");
    let cleared = app
        .patch(&t.caller, &path, json!({"orchestration_config": null}))
        .await;
    assert!(
        cleared.body["orchestration_config"].is_null(),
        "{}",
        cleared.text
    );

    assert_eq!(app.delete(&t.caller, &path).await.status, 204);
    assert_eq!(app.get(&t.caller, &path).await.status, 404);
    assert_eq!(app.get(&t.caller, &collection).await.body["total"], 1);
}

#[tokio::test]
async fn teammate_validation_names_nested_fields() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let ws = app
        .post(
            &t.caller,
            &format!("/api/v1/tenants/{}/workspaces", t.id),
            json!({"name": "ws"}),
        )
        .await
        .id();
    let collection = format!("/api/v1/workspaces/{ws}/teammates");
    let resp = app
        .post(&t.caller, &collection, json!({"name": "x", "orchestration_config": {"assistant_ids": ["nope"], "max_assistants": 0}}))
        .await;
    assert_eq!(resp.status, 422);
    assert_eq!(
        resp.locs(),
        [
            r#"["body","orchestration_config","assistant_ids",0]"#,
            r#"["body","orchestration_config","max_assistants"]"#
        ]
    );
    let not_object = app
        .post(
            &t.caller,
            &collection,
            json!({"name": "x", "orchestration_config": "weighted"}),
        )
        .await;
    assert_eq!(not_object.locs(), [r#"["body","orchestration_config"]"#]);
    let unknown_strategy = app
        .post(
            &t.caller,
            &collection,
            json!({"name": "x", "orchestration_config": {"strategy": "round-robin"}}),
        )
        .await;
    assert_eq!(
        unknown_strategy.status, 201,
        "unknown strategies fall back to weighted at query time"
    );
    let tm = unknown_strategy.id();
    // NUL anywhere (PostgreSQL's JSONB cannot store it) is a 422 on every backend, not a 500.
    let nul = app
        .patch(
            &t.caller,
            &format!("/api/v1/teammates/{tm}"),
            json!({"orchestration_config": {"extra": {"deep": ["a\u{0}b"]}}}),
        )
        .await;
    assert_eq!(
        (nul.status, nul.locs()),
        (422, vec![r#"["body","orchestration_config"]"#.to_string()]),
        "{}",
        nul.text
    );
    // JSON Schema's integer includes 2.0.
    let whole = app
        .patch(
            &t.caller,
            &format!("/api/v1/teammates/{tm}"),
            json!({"orchestration_config": {"max_assistants": 2.0}}),
        )
        .await;
    assert_eq!(whole.status, 200, "{}", whole.text);
    let bad_patch = app
        .patch(
            &t.caller,
            &format!("/api/v1/teammates/{tm}"),
            json!({"orchestration_config": {"weights": {"a": "heavy"}}}),
        )
        .await;
    assert_eq!(
        bad_patch.locs(),
        [r#"["body","orchestration_config","weights","a"]"#]
    );

    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        app.post(
            &t.caller,
            &format!("/api/v1/workspaces/{unknown}/teammates"),
            json!({"name": "x"})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.get(
            &t.caller,
            &format!("/api/v1/workspaces/{unknown}/teammates")
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.get(&t.caller, "/api/v1/teammates/xyz").await.status,
        404
    );
}

#[tokio::test]
async fn deleting_a_workspace_cascades_to_teammates_and_below() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let (ws, tm, asst) = app.create_tree(&t).await;
    assert_eq!(
        app.post(
            &t.caller,
            &format!("/api/v1/assistants/{asst}/instruction"),
            json!({"system_prompt": "Be brief."})
        )
        .await
        .status,
        201
    );
    let doc = app
        .upload(
            &t.caller,
            &asst,
            "notes.md",
            b"# Notes\nSome text.".to_vec(),
        )
        .await;
    assert_eq!(doc.status, 201);
    let kb = app
        .get(&t.caller, &format!("/api/v1/assistants/{asst}"))
        .await
        .body["knowledge_base_id"]
        .as_str()
        .unwrap()
        .to_string();
    let kb_dir = app.dir.path().join("uploads").join(&t.id).join(&kb);
    assert!(kb_dir.exists());
    // A second workspace that must survive.
    let (ws2, _, asst2) = app.create_tree(&t).await;

    assert_eq!(
        app.delete(&t.caller, &format!("/api/v1/workspaces/{ws}"))
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/teammates/{tm}"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/assistants/{asst}"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/assistants/{asst}/instruction"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/documents/{}", doc.id()))
            .await
            .status,
        404
    );
    assert!(!kb_dir.exists(), "stored files removed");
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/workspaces/{ws2}"))
            .await
            .status,
        200
    );
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/assistants/{asst2}"))
            .await
            .status,
        200
    );
}
