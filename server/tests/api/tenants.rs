use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn create_get_and_duplicate_names() {
    let app = spawn_app().await;
    let admin = app.admin();
    let resp = app
        .post(&admin, "/api/v1/tenants", json!({"name": "  Acme  "}))
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    assert_eq!(resp.body["name"], "Acme", "names are trimmed");
    for field in ["id", "created_at", "updated_at", "api_key"] {
        assert!(resp.body[field].is_string(), "{field} in {}", resp.text);
    }
    let id = resp.id();
    let created_at = resp.body["created_at"].as_str().unwrap().to_string();
    assert!(chrono::DateTime::parse_from_rfc3339(&created_at).is_ok());

    let got = app
        .get(&app.admin_in(&id), &format!("/api/v1/tenants/{id}"))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body["created_at"],
        created_at.as_str(),
        "the stored timestamp equals the returned one"
    );
    assert!(got.body.get("api_key").is_none());

    let dup = app
        .post(&admin, "/api/v1/tenants", json!({"name": "Acme"}))
        .await;
    assert_eq!(
        (dup.status, dup.body["detail"].as_str()),
        (409, Some("A tenant with this name already exists"))
    );
}

#[tokio::test]
async fn create_validates_the_body_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.admin();
    let cases = [
        (json!({}), r#"["body","name"]"#, "missing"),
        (
            json!({"name": ""}),
            r#"["body","name"]"#,
            "string_too_short",
        ),
        (
            json!({"name": "   "}),
            r#"["body","name"]"#,
            "string_too_short",
        ),
        (json!({"name": 42}), r#"["body","name"]"#, "type_error"),
        (
            json!({"name": "a\u{0}b"}),
            r#"["body","name"]"#,
            "string_pattern_mismatch",
        ),
        (
            json!({"name": "x".repeat(256)}),
            r#"["body","name"]"#,
            "string_too_long",
        ),
        (json!("name"), r#"["body"]"#, "model_attributes_type"),
    ];
    for (body, loc, kind) in cases {
        let resp = app.post(&admin, "/api/v1/tenants", body.clone()).await;
        assert_eq!(resp.status, 422, "{body}: {}", resp.text);
        assert_eq!(resp.locs(), [loc], "{body}");
        assert_eq!(resp.body["detail"][0]["type"], kind, "{body}");
        assert!(resp.body["detail"][0]["msg"].is_string());
    }
    let malformed = app
        .post_raw(&admin, "/api/v1/tenants", "{\"name\": \"x\",")
        .await;
    assert_eq!(malformed.status, 422, "{}", malformed.text);
    assert_eq!(malformed.body["detail"][0]["type"], "json_invalid");
    assert_eq!(malformed.body["detail"][0]["loc"][0], "body");
    let empty = app.post_raw(&admin, "/api/v1/tenants", "").await;
    assert_eq!(
        (empty.status, empty.locs()),
        (422, vec![r#"["body"]"#.to_string()])
    );
    let exactly_255 = app
        .post(&admin, "/api/v1/tenants", json!({"name": "é".repeat(255)}))
        .await;
    assert_eq!(
        exactly_255.status, 201,
        "255 characters (not bytes) are fine"
    );
}

#[tokio::test]
async fn list_paginates_with_bounds() {
    let app = spawn_app().await;
    let admin = app.admin();
    for i in 0..25 {
        assert_eq!(
            app.post(
                &admin,
                "/api/v1/tenants",
                json!({"name": format!("t{i:02}")})
            )
            .await
            .status,
            201
        );
    }
    let page = app.get(&admin, "/api/v1/tenants").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        (
            page.body["total"].as_i64(),
            page.body["limit"].as_i64(),
            page.body["offset"].as_i64()
        ),
        (Some(25), Some(20), Some(0))
    );
    let names: Vec<&str> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 20);
    assert_eq!(names[0], "t00", "oldest first");

    let rest = app.get(&admin, "/api/v1/tenants?limit=10&offset=20").await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 5);
    assert_eq!(rest.body["items"][0]["name"], "t20");
    assert_eq!(
        (rest.body["limit"].as_i64(), rest.body["offset"].as_i64()),
        (Some(10), Some(20))
    );

    let beyond = app.get(&admin, "/api/v1/tenants?offset=1000").await;
    assert_eq!(
        (
            beyond.status,
            beyond.body["items"].as_array().unwrap().len(),
            beyond.body["total"].as_i64()
        ),
        (200, 0, Some(25))
    );
    assert_eq!(
        app.get(&admin, "/api/v1/tenants?limit=100").await.status,
        200
    );

    for (query, loc, kind) in [
        ("limit=101", "limit", "less_than_equal"),
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=-5", "limit", "greater_than_equal"),
        ("offset=-1", "offset", "greater_than_equal"),
        ("limit=ten", "limit", "int_parsing"),
        ("limit=%2B5", "limit", "int_parsing"),
        ("limit=%205", "limit", "int_parsing"),
        ("limit=5.0", "limit", "int_parsing"),
        ("limit=5&limit=6", "limit", "value_error"),
        ("offset=99999999999999999999", "offset", "int_parsing"),
        ("name=a%00b", "name", "string_pattern_mismatch"),
    ] {
        let resp = app.get(&admin, &format!("/api/v1/tenants?{query}")).await;
        assert_eq!(resp.status, 422, "{query}");
        assert_eq!(resp.locs(), [format!(r#"["query","{loc}"]"#)], "{query}");
        assert_eq!(resp.body["detail"][0]["type"], kind);
    }

    let filtered = app.get(&admin, "/api/v1/tenants?name=t07").await;
    assert_eq!(
        (
            filtered.body["total"].as_i64(),
            filtered.body["items"][0]["name"].as_str()
        ),
        (Some(1), Some("t07"))
    );
}

#[tokio::test]
async fn patch_put_and_delete_with_cascade() {
    let app = spawn_app().await;
    let t = app.create_tenant("old").await;
    let other = app.create_tenant("taken").await;
    let path = format!("/api/v1/tenants/{}", t.id);
    // Read first, so the tenant is in the metadata cache when it is renamed.
    assert_eq!(app.get(&t.caller, &path).await.body["name"], "old");

    let renamed = app.patch(&t.caller, &path, json!({"name": "new"})).await;
    assert_eq!(
        (renamed.status, renamed.body["name"].as_str()),
        (200, Some("new"))
    );
    assert_ne!(renamed.body["updated_at"], renamed.body["created_at"]);
    let put = app.put(&t.caller, &path, json!({"name": "newer"})).await;
    assert_eq!(
        (put.status, put.body["name"].as_str()),
        (200, Some("newer"))
    );
    let read = app.get(&t.caller, &path).await;
    assert_eq!(
        (read.status, read.body["name"].as_str()),
        (200, Some("newer")),
        "a rename is seen at once by reads through the cache"
    );
    assert_eq!(read.body["updated_at"], put.body["updated_at"]);
    assert_eq!(read.headers["content-type"], "application/json");
    let noop = app.patch(&t.caller, &path, json!({})).await;
    assert_eq!(
        (noop.status, noop.body["name"].as_str()),
        (200, Some("newer"))
    );
    let dup = app.patch(&t.caller, &path, json!({"name": "taken"})).await;
    assert_eq!(dup.status, 409);
    let null = app.patch(&t.caller, &path, json!({"name": null})).await;
    assert_eq!(
        (null.status, null.locs()),
        (422, vec![r#"["body","name"]"#.to_string()])
    );

    let (ws, tm, asst) = app.create_tree(&t).await;
    let upload = app
        .upload(&t.caller, &asst, "a.txt", b"hello world".to_vec())
        .await;
    assert_eq!(upload.status, 201);
    let tenant_dir = app.dir.path().join("uploads").join(&t.id);
    assert!(tenant_dir.exists());

    let admin = app.admin_in(&t.id);
    assert_eq!(app.delete(&admin, &path).await.status, 204);
    assert_eq!(app.get(&admin, &path).await.status, 404);
    assert_eq!(app.delete(&admin, &path).await.status, 404);
    for child in [
        format!("/api/v1/workspaces/{ws}"),
        format!("/api/v1/teammates/{tm}"),
        format!("/api/v1/assistants/{asst}"),
        format!("/api/v1/documents/{}", upload.id()),
    ] {
        assert_eq!(
            app.get(&admin, &child).await.status,
            404,
            "{child} survived its tenant"
        );
    }
    assert!(!tenant_dir.exists(), "uploads removed with the tenant");
    // The other tenant is untouched and the name is free again.
    assert_eq!(
        app.get(&other.caller, &format!("/api/v1/tenants/{}", other.id))
            .await
            .status,
        200
    );
    assert_eq!(
        app.post(&app.admin(), "/api/v1/tenants", json!({"name": "newer"}))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn non_uuid_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    for id in ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"] {
        let resp = app.get(&t.caller, &format!("/api/v1/tenants/{id}")).await;
        assert_eq!(
            (resp.status, resp.body["detail"].as_str()),
            (404, Some("Tenant not found")),
            "{id}"
        );
    }
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(
            &app.admin_in(&unknown.to_string()),
            &format!("/api/v1/tenants/{unknown}")
        )
        .await
        .status,
        404
    );
}
