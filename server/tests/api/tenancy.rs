//! Which tenant a request acts in when the path names it, when an admin addresses a resource by
//! its id without `X-Tenant-ID`, and the 404 for unknown or malformed ids (the rules are in
//! `src/api/auth.rs`; isolation between tenants is attacked in `isolation.rs`).

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Caller, TestApp, spawn_app};

/// One body that satisfies every JSON route, so a 404 cannot be explained by a validation error.
fn universal_body() -> Value {
    json!({"name": "n", "system_prompt": "p", "query": "q?", "file_name": "x.txt", "document_ids": []})
}

/// Sends `method path` (an upload when the path ends so) with a body where one is expected.
async fn send(app: &TestApp, caller: &Caller, method: &str, path: &str) -> crate::helpers::Resp {
    if path.ends_with("/knowledge/upload") {
        let assistant = path.split('/').nth(4).unwrap();
        return app
            .upload(caller, assistant, "a.txt", b"some text".to_vec())
            .await;
    }
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let body = matches!(method, Method::POST | Method::PATCH | Method::PUT).then(universal_body);
    app.send(caller, method, path, body).await
}

#[tokio::test]
async fn an_admin_addresses_a_tenant_by_its_path_without_the_header() {
    let app = spawn_app().await;
    let admin = app.admin();
    let t = app.create_tenant("t").await;
    let path = format!("/api/v1/tenants/{}", t.id);

    let got = app.get(&admin, &path).await;
    assert_eq!((got.status, got.id()), (200, t.id.clone()), "{}", got.text);
    let renamed = app.patch(&admin, &path, json!({"name": "renamed"})).await;
    assert_eq!(
        (renamed.status, renamed.body["name"].as_str()),
        (200, Some("renamed"))
    );
    let put = app.put(&admin, &path, json!({"name": "again"})).await;
    assert_eq!(
        (put.status, put.body["name"].as_str()),
        (200, Some("again"))
    );
    let ws = app
        .post(&admin, &format!("{path}/workspaces"), json!({"name": "ws"}))
        .await;
    assert_eq!(
        (ws.status, ws.body["tenant_id"].as_str()),
        (201, Some(t.id.as_str()))
    );
    let listed = app.get(&admin, &format!("{path}/workspaces")).await;
    assert_eq!(
        (listed.status, listed.body["total"].as_i64()),
        (200, Some(1))
    );

    // With the header, it must name the path's tenant: another tenant's path is not found.
    let other = app.create_tenant("other").await;
    let mismatch = app.get(&app.admin_in(&other.id), &path).await;
    assert_eq!(mismatch.status, 404, "{}", mismatch.text);
    assert_eq!(app.get(&app.admin_in(&t.id), &path).await.status, 200);

    // Deleting needs the admin token only.
    let deleted = app.delete(&admin, &path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(app.get(&admin, &path).await.status, 404);
    assert_eq!(
        app.get(&admin, &format!("/api/v1/workspaces/{}", ws.id()))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn an_admin_addresses_any_resource_by_its_id_in_its_own_tenant() {
    let app = spawn_app().await;
    let admin = app.admin();
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;
    let (ws, tm, asst) = app.create_tree(&a).await;
    let doc = app
        .upload(&a.caller, &asst, "a.txt", b"The code is 77.".to_vec())
        .await
        .id();
    for (path, id) in [
        (format!("/api/v1/workspaces/{ws}"), &ws),
        (format!("/api/v1/teammates/{tm}"), &tm),
        (format!("/api/v1/assistants/{asst}"), &asst),
        (format!("/api/v1/documents/{doc}"), &doc),
    ] {
        let got = app.get(&admin, &path).await;
        assert_eq!(
            (got.status, got.id()),
            (200, id.clone()),
            "{path}: {}",
            got.text
        );
        assert_eq!(got.body["tenant_id"], a.id, "{path}");
        // An admin acting in another tenant (by the header) does not see it.
        assert_eq!(
            app.get(&app.admin_in(&b.id), &path).await.status,
            404,
            "{path}"
        );
    }
    let status = app
        .get(
            &admin,
            &format!("/api/v1/assistants/{asst}/knowledge/status"),
        )
        .await;
    assert_eq!(
        (status.status, status.body["total"].as_i64()),
        (200, Some(1)),
        "{}",
        status.text
    );
    let processed = app.process_batch(&admin, &asst).await;
    assert_eq!(
        (processed.status, processed.body["processed"].as_i64()),
        (200, Some(1))
    );
    let answer = app
        .post(
            &admin,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "What is the code?"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.text.contains("77"), "{}", answer.text);
    let renamed = app
        .patch(
            &admin,
            &format!("/api/v1/teammates/{tm}"),
            json!({"name": "by admin"}),
        )
        .await;
    assert_eq!(
        (renamed.status, renamed.body["name"].as_str()),
        (200, Some("by admin"))
    );
    // What the admin wrote is in the resource's tenant.
    assert_eq!(
        app.get(&a.caller, &format!("/api/v1/teammates/{tm}"))
            .await
            .body["name"],
        "by admin"
    );
    let deleted = app
        .delete(&admin, &format!("/api/v1/documents/{doc}"))
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.get(&a.caller, &format!("/api/v1/documents/{doc}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_tenant_token_acts_in_its_own_tenant_only() {
    let app = spawn_app().await;
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;
    let (ws, _, _) = app.create_tree(&a).await;
    let a_bare = Caller {
        token: a.caller.token.clone(),
        tenant: None,
    };

    // No header needed, and a path naming a tenant must name its own.
    assert_eq!(
        app.get(&a_bare, &format!("/api/v1/tenants/{}", a.id))
            .await
            .status,
        200
    );
    let listed = app
        .get(&a_bare, &format!("/api/v1/tenants/{}/workspaces", a.id))
        .await;
    assert_eq!(
        (listed.status, listed.body["total"].as_i64()),
        (200, Some(1))
    );
    for path in [
        format!("/api/v1/tenants/{}", b.id),
        format!("/api/v1/tenants/{}/workspaces", b.id),
    ] {
        let resp = app.get(&a_bare, &path).await;
        assert_eq!(resp.status, 404, "{path}: {}", resp.text);
        assert!(!resp.text.contains("\"b\""), "{}", resp.text);
    }
    let created = app
        .post(
            &a_bare,
            &format!("/api/v1/tenants/{}/workspaces", b.id),
            json!({"name": "sneaky"}),
        )
        .await;
    assert_eq!(created.status, 404);
    assert_eq!(
        app.get(&b.caller, &format!("/api/v1/tenants/{}/workspaces", b.id))
            .await
            .body["total"],
        0
    );
    // A header naming another tenant is refused, even where the path is its own tenant.
    let wrong = app
        .get(
            &a.caller.with_tenant_header(&b.id),
            &format!("/api/v1/tenants/{}", a.id),
        )
        .await;
    assert_eq!(wrong.status, 403);
    // By id too, without the header, it acts in its own tenant; B's token does not see A's.
    let bare = app.get(&a_bare, &format!("/api/v1/workspaces/{ws}")).await;
    assert_eq!((bare.status, bare.id()), (200, ws.clone()));
    let b_bare = Caller {
        token: b.caller.token.clone(),
        tenant: None,
    };
    assert_eq!(
        app.get(&b_bare, &format!("/api/v1/workspaces/{ws}"))
            .await
            .status,
        404
    );
    // Deleting a tenant stays an admin's job.
    let delete = app
        .delete(&a_bare, &format!("/api/v1/tenants/{}", a.id))
        .await;
    assert_eq!(delete.status, 403);
    assert_eq!(
        app.get(&a_bare, &format!("/api/v1/tenants/{}", a.id))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404_on_every_route() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let spec = app.get(&Caller::anonymous(), "/openapi.json").await.body;
    let unknown = Uuid::new_v4().to_string();
    let simple = Uuid::new_v4().simple().to_string();
    let mut tried = 0;
    for (template, ops) in spec["paths"].as_object().unwrap() {
        if !template.contains('{') {
            continue;
        }
        let ids = [unknown.as_str(), "not-a-uuid", simple.as_str(), "%20"];
        for id in ids {
            let path = template
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        id
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for method in ops.as_object().unwrap().keys() {
                // The admin without the header, the admin in a tenant, and the tenant itself.
                for caller in [app.admin(), app.admin_in(&t.id), t.caller.clone()] {
                    let resp = send(&app, &caller, method, &path).await;
                    assert_eq!(
                        resp.status, 404,
                        "{method} {path} as {:?}: {}",
                        caller.tenant, resp.text
                    );
                    assert!(
                        resp.body["detail"].is_string(),
                        "{method} {path}: {}",
                        resp.text
                    );
                    tried += 1;
                }
            }
        }
    }
    assert!(tried >= 4 * 3 * 25, "only {tried} requests tried");
}
