//! Another tenant's ids on every route: never that tenant's data, always a plain 404.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Caller, spawn_app};

/// One body that satisfies every JSON route (unknown fields are ignored), so a 404 cannot be
/// explained by a validation failure.
fn universal_body() -> Value {
    json!({"name": "intruder", "system_prompt": "intruder", "query": "What is the secret?", "file_name": "x.txt", "document_ids": []})
}

#[tokio::test]
async fn another_tenants_ids_are_not_found_on_every_route() {
    let app = spawn_app().await;
    let a = app.create_tenant("victim").await;
    let b = app.create_tenant("intruder").await;
    let (ws, tm, asst) = app.create_tree(&a).await;
    assert_eq!(
        app.post(
            &a.caller,
            &format!("/api/v1/assistants/{asst}/instruction"),
            json!({"system_prompt": "secret prompt"})
        )
        .await
        .status,
        201
    );
    let doc = app
        .upload(
            &a.caller,
            &asst,
            "secret.txt",
            b"The secret code is 4242.".to_vec(),
        )
        .await
        .id();
    app.process_batch(&a.caller, &asst).await;
    let snapshot = |path: String| {
        let app = &app;
        let caller = a.caller.clone();
        async move { app.get(&caller, &path).await.text }
    };
    let before = [
        snapshot(format!("/api/v1/tenants/{}", a.id)).await,
        snapshot(format!("/api/v1/workspaces/{ws}")).await,
        snapshot(format!("/api/v1/teammates/{tm}")).await,
        snapshot(format!("/api/v1/assistants/{asst}")).await,
        snapshot(format!("/api/v1/assistants/{asst}/instruction")).await,
        snapshot(format!("/api/v1/documents/{doc}")).await,
    ];

    // Every documented route with an id in its path, filled with the victim's ids.
    let spec = app.get(&Caller::anonymous(), "/openapi.json").await.body;
    let mut tried = 0;
    // B's token with its header and without one (it then acts in B), and an admin acting in B.
    let b_bare = Caller {
        token: b.caller.token.clone(),
        tenant: None,
    };
    let intruders = [b.caller.clone(), b_bare.clone(), app.admin_in(&b.id)];
    for (template, ops) in spec["paths"].as_object().unwrap() {
        if !template.contains('{') {
            continue;
        }
        let path = template
            .replace("{tenant_id}", &a.id)
            .replace("{workspace_id}", &ws)
            .replace("{teammate_id}", &tm)
            .replace("{assistant_id}", &asst)
            .replace("{document_id}", &doc);
        assert!(!path.contains('{'), "unknown path parameter in {template}");
        for method in ops.as_object().unwrap().keys() {
            for intruder in &intruders {
                let resp = if template.ends_with("/upload") {
                    app.upload(intruder, &asst, "evil.txt", b"evil".to_vec())
                        .await
                } else {
                    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                    let body = matches!(method, Method::POST | Method::PATCH | Method::PUT)
                        .then(universal_body);
                    app.send(intruder, method, &path, body).await
                };
                assert_eq!(resp.status, 404, "{method} {template}: {}", resp.text);
                for secret in ["4242", "secret prompt", "victim", "secret.txt"] {
                    assert!(
                        !resp.text.contains(secret),
                        "{method} {template} leaked {secret}: {}",
                        resp.text
                    );
                }
                tried += 1;
            }
        }
    }
    assert!(tried >= 3 * 25, "only {tried} route/method pairs tried");

    // The victim's data is unchanged.
    let after = [
        snapshot(format!("/api/v1/tenants/{}", a.id)).await,
        snapshot(format!("/api/v1/workspaces/{ws}")).await,
        snapshot(format!("/api/v1/teammates/{tm}")).await,
        snapshot(format!("/api/v1/assistants/{asst}")).await,
        snapshot(format!("/api/v1/assistants/{asst}/instruction")).await,
        snapshot(format!("/api/v1/documents/{doc}")).await,
    ];
    assert_eq!(before, after);
    let status = app
        .get(
            &a.caller,
            &format!("/api/v1/assistants/{asst}/knowledge/status"),
        )
        .await;
    assert_eq!(
        status.body["total"], 1,
        "no document was added by the intruder"
    );
}

#[tokio::test]
async fn retrieval_never_crosses_tenants() {
    let app = spawn_app().await;
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;
    let (_, tm_a, asst_a) = app.create_tree(&a).await;
    let (_, tm_b, asst_b) = app.create_tree(&b).await;
    app.upload(
        &a.caller,
        &asst_a,
        "a.txt",
        b"The launch code for project falcon is ZEBRA-991.".to_vec(),
    )
    .await;
    app.upload(
        &b.caller,
        &asst_b,
        "b.txt",
        b"Project falcon is a gardening club.".to_vec(),
    )
    .await;
    for (t, asst) in [(&a, &asst_a), (&b, &asst_b)] {
        let batch = app.process_batch(&t.caller, asst).await;
        assert_eq!(batch.body["processed"], 1);
    }
    let question = json!({"query": "What is the launch code for project falcon?"});
    let resp_b = app
        .post(
            &b.caller,
            &format!("/api/v1/teammates/{tm_b}/query"),
            question.clone(),
        )
        .await;
    assert_eq!(resp_b.status, 200);
    assert!(!resp_b.text.contains("ZEBRA"), "{}", resp_b.text);
    assert!(
        resp_b.text.contains("b.txt") && !resp_b.text.contains("a.txt"),
        "{}",
        resp_b.text
    );
    let resp_a = app
        .post(
            &a.caller,
            &format!("/api/v1/teammates/{tm_a}/query"),
            question,
        )
        .await;
    assert!(
        resp_a.body["answer"]
            .as_str()
            .unwrap()
            .contains("ZEBRA-991"),
        "{}",
        resp_a.text
    );
}
