use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn workspace_crud() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let collection = format!("/api/v1/tenants/{}/workspaces", t.id);

    let created = app
        .post(&t.caller, &collection, json!({"name": "Sales"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        (
            created.body["name"].as_str(),
            created.body["tenant_id"].as_str()
        ),
        (Some("Sales"), Some(t.id.as_str()))
    );
    let path = format!("/api/v1/workspaces/{}", created.id());

    let got = app.get(&t.caller, &path).await;
    assert_eq!(got.body, created.body);

    let patched = app
        .patch(&t.caller, &path, json!({"name": "Marketing"}))
        .await;
    assert_eq!(
        (patched.status, patched.body["name"].as_str()),
        (200, Some("Marketing"))
    );
    let put = app.put(&t.caller, &path, json!({"name": "Ops"})).await;
    assert_eq!((put.status, put.body["name"].as_str()), (200, Some("Ops")));
    assert_eq!(app.get(&t.caller, &path).await.body["name"], "Ops");
    assert_eq!(
        app.patch(&t.caller, &path, json!({"name": ""}))
            .await
            .status,
        422
    );

    assert_eq!(app.delete(&t.caller, &path).await.status, 204);
    assert_eq!(app.get(&t.caller, &path).await.status, 404);
    assert_eq!(app.delete(&t.caller, &path).await.status, 404);
    assert_eq!(
        app.patch(&t.caller, &path, json!({"name": "x"}))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn workspace_errors() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let collection = format!("/api/v1/tenants/{}/workspaces", t.id);
    let missing = app
        .post(&t.caller, &collection, json!({"nme": "typo"}))
        .await;
    assert_eq!(
        (missing.status, missing.locs()),
        (422, vec![r#"["body","name"]"#.to_string()])
    );
    for bad in ["nope", "1"] {
        assert_eq!(
            app.get(&t.caller, &format!("/api/v1/workspaces/{bad}"))
                .await
                .status,
            404
        );
        assert_eq!(
            app.post(
                &t.caller,
                &format!("/api/v1/tenants/{bad}/workspaces"),
                json!({"name": "x"})
            )
            .await
            .status,
            404
        );
    }
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/workspaces/{unknown}"))
            .await
            .status,
        404
    );
    // A deleted tenant's admin-scoped creation: the tenant no longer exists.
    let gone = app.create_tenant("gone").await;
    assert_eq!(
        app.delete(
            &app.admin_in(&gone.id),
            &format!("/api/v1/tenants/{}", gone.id)
        )
        .await
        .status,
        204
    );
    let orphan = app
        .post(
            &gone.caller,
            &format!("/api/v1/tenants/{}/workspaces", gone.id),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(
        (orphan.status, orphan.body["detail"].as_str()),
        (404, Some("Tenant not found"))
    );
    assert_eq!(
        app.get(
            &gone.caller,
            &format!("/api/v1/tenants/{}/workspaces", gone.id)
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn workspace_list_paginates_and_filters() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let collection = format!("/api/v1/tenants/{}/workspaces", t.id);
    for i in 0..23 {
        assert_eq!(
            app.post(&t.caller, &collection, json!({"name": format!("w{i:02}")}))
                .await
                .status,
            201
        );
    }
    let first = app.get(&t.caller, &collection).await;
    assert_eq!(
        (
            first.body["items"].as_array().unwrap().len(),
            first.body["total"].as_i64()
        ),
        (20, Some(23))
    );
    let second = app.get(&t.caller, &format!("{collection}?offset=20")).await;
    let names: Vec<&str> = second.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["w20", "w21", "w22"]);
    let one = app
        .get(&t.caller, &format!("{collection}?limit=1&offset=5"))
        .await;
    assert_eq!(one.body["items"][0]["name"], "w05");
    let filtered = app.get(&t.caller, &format!("{collection}?name=w13")).await;
    assert_eq!(filtered.body["total"], 1);
    assert_eq!(
        app.get(&t.caller, &format!("{collection}?limit=1000"))
            .await
            .status,
        422
    );
}
