use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use uuid::Uuid;

use oyl_server::jwt::{Algorithm, JwtKeys, Role, claims_for};

use crate::helpers::{Caller, raw_db, spawn_app};

fn with_token(token: &str, tenant: &str) -> Caller {
    Caller {
        token: Some(token.to_string()),
        tenant: Some(tenant.to_string()),
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let path = format!("/api/v1/tenants/{}", t.id);

    let none = app
        .get(
            &Caller {
                token: None,
                tenant: Some(t.id.clone()),
            },
            &path,
        )
        .await;
    assert_eq!(
        (none.status, none.body["detail"].as_str()),
        (401, Some("Not authenticated"))
    );
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));

    let basic = app
        .client
        .get(app.url(&path))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .header("x-tenant-id", &t.id)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);

    let now = chrono::Utc::now().timestamp();
    let expired_claims = claims_for(
        "x",
        Role::Tenant,
        Some(Uuid::parse_str(&t.id).unwrap()),
        now - 7200,
        60,
    );
    let expired = app.state.jwt.encode(&expired_claims);
    let resp = app.get(&with_token(&expired, &t.id), &path).await;
    assert_eq!(
        (resp.status, resp.body["detail"].as_str()),
        (401, Some("Could not validate credentials"))
    );

    // Tampered: the payload of a tenant token swapped for an admin payload, signature kept.
    let good = t.caller.token.clone().unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let admin_payload = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"sub":"x","role":"admin","iat":{now},"exp":{}}}"#,
        now + 3600
    ));
    let tampered = format!("{}.{}.{}", parts[0], admin_payload, parts[2]);
    assert_eq!(
        app.get(&with_token(&tampered, &t.id), &path).await.status,
        401
    );
    assert_eq!(
        app.get(&app.admin().with_tenant_header(&t.id), "/api/v1/tenants")
            .await
            .status,
        200
    );
    assert_eq!(
        app.get(
            &Caller {
                token: Some(tampered),
                tenant: None
            },
            "/api/v1/tenants"
        )
        .await
        .status,
        401
    );

    // alg: none, unsigned.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{admin_payload}.");
    assert_eq!(
        app.get(
            &Caller {
                token: Some(unsigned),
                tenant: None
            },
            "/api/v1/tenants"
        )
        .await
        .status,
        401
    );

    // Signed with another key, or another HMAC algorithm with the right key.
    let other_key = JwtKeys::new(
        Algorithm::HS256,
        b"some-other-secret-some-other-secret!".to_vec(),
    );
    let forged = other_key.encode(&claims_for("x", Role::Admin, None, now, 60));
    assert_eq!(
        app.get(
            &Caller {
                token: Some(forged),
                tenant: None
            },
            "/api/v1/tenants"
        )
        .await
        .status,
        401
    );
    let hs512 = JwtKeys::new(
        Algorithm::HS512,
        crate::helpers::TEST_SECRET.as_bytes().to_vec(),
    );
    let wrong_alg = hs512.encode(&claims_for("x", Role::Admin, None, now, 60));
    assert_eq!(
        app.get(
            &Caller {
                token: Some(wrong_alg),
                tenant: None
            },
            "/api/v1/tenants"
        )
        .await
        .status,
        401
    );

    for junk in ["", "abc", "a.b.c", "Bearer"] {
        let resp = app
            .client
            .get(app.url("/api/v1/tenants"))
            .header("authorization", format!("Bearer {junk}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{junk}");
    }
}

#[tokio::test]
async fn the_tenant_header_is_optional_and_must_match_the_token() {
    let app = spawn_app().await;
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;
    let (ws, _, _) = app.create_tree(&a).await;
    let path = format!("/api/v1/tenants/{}", a.id);
    let a_without_header = Caller {
        token: a.caller.token.clone(),
        tenant: None,
    };

    // Without the header, a tenant token acts in its own tenant.
    let by_id = app
        .get(&a_without_header, &format!("/api/v1/workspaces/{ws}"))
        .await;
    assert_eq!(
        (by_id.status, by_id.id()),
        (200, ws.clone()),
        "{}",
        by_id.text
    );
    let by_path = app.get(&a_without_header, &path).await;
    assert_eq!((by_path.status, by_path.id()), (200, a.id.clone()));

    let simple = Uuid::parse_str(&a.id).unwrap().simple().to_string();
    for bad in ["not-a-uuid", simple.as_str()] {
        let malformed = app.get(&a.caller.with_tenant_header(bad), &path).await;
        assert_eq!(malformed.status, 422, "{bad}: {}", malformed.text);
        assert_eq!(malformed.body["detail"][0]["type"], "uuid_parsing");
    }

    // A's token with B's header: valid token, not allowed.
    let wrong = app
        .get(
            &a.caller.with_tenant_header(&b.id),
            &format!("/api/v1/tenants/{}", b.id),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.body["detail"].as_str()),
        (403, Some("Token is not valid for this tenant"))
    );

    // Authentication is checked before the header: no information without a token.
    let anon = app
        .get(
            &Caller {
                token: None,
                tenant: Some("junk".into()),
            },
            &path,
        )
        .await;
    assert_eq!(anon.status, 401);
}

#[tokio::test]
async fn tenant_tokens_cannot_use_admin_routes() {
    let app = spawn_app().await;
    let a = app.create_tenant("a").await;
    let create = app
        .post(&a.caller, "/api/v1/tenants", json!({"name": "sneaky"}))
        .await;
    assert_eq!(
        (create.status, create.body["detail"].as_str()),
        (403, Some("Admin token required"))
    );
    assert_eq!(app.get(&a.caller, "/api/v1/tenants").await.status, 403);
    let delete = app
        .delete(&a.caller, &format!("/api/v1/tenants/{}", a.id))
        .await;
    assert_eq!(delete.status, 403);
    assert_eq!(
        app.get(&a.caller, &format!("/api/v1/tenants/{}", a.id))
            .await
            .status,
        200,
        "still there"
    );
}

#[tokio::test]
async fn api_keys_are_exchanged_for_tokens_and_stored_only_hashed() {
    let app = spawn_app().await;
    let t = app.create_tenant("keys").await;
    assert!(t.api_key.starts_with("oyl_"));

    let resp = app
        .post(
            &Caller::anonymous(),
            "/api/v1/auth/token",
            json!({"api_key": t.api_key}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.body["token_type"], "bearer");
    assert_eq!(resp.body["tenant_id"], t.id);
    assert_eq!(resp.body["expires_in"], 3600);
    let token = resp.body["access_token"].as_str().unwrap().to_string();
    let me = app
        .get(
            &with_token(&token, &t.id),
            &format!("/api/v1/tenants/{}", t.id),
        )
        .await;
    assert_eq!((me.status, me.body["name"].as_str()), (200, Some("keys")));
    // The exchanged token is a tenant token: no admin rights.
    assert_eq!(
        app.get(&with_token(&token, &t.id), "/api/v1/tenants")
            .await
            .status,
        403
    );

    let bad = app
        .post(
            &Caller::anonymous(),
            "/api/v1/auth/token",
            json!({"api_key": "oyl_wrong"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["detail"].as_str()),
        (401, Some("Invalid API key"))
    );
    let missing = app
        .post(&Caller::anonymous(), "/api/v1/auth/token", json!({}))
        .await;
    assert_eq!(
        (missing.status, missing.locs()),
        (422, vec![r#"["body","api_key"]"#.to_string()])
    );

    // The key itself is nowhere in the database; its SHA-256 is.
    let db = raw_db(&app);
    let hashes: Vec<String> = oyl_server::with_pool!(db, pool => {
        sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_all(pool).await
    })
    .unwrap();
    assert_eq!(hashes, vec![oyl_server::keys::hash_api_key(&t.api_key)]);
    assert!(!hashes[0].contains(&t.api_key));
    // Tenant listing never shows keys.
    let list = app.get(&app.admin(), "/api/v1/tenants").await;
    assert!(!list.text.contains(&t.api_key) && !list.text.contains("api_key"));
}

#[tokio::test]
async fn admins_act_inside_the_tenant_named_by_the_header() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let ws = app
        .post(
            &app.admin_in(&t.id),
            &format!("/api/v1/tenants/{}/workspaces", t.id),
            json!({"name": "by admin"}),
        )
        .await;
    assert_eq!(ws.status, 201, "{}", ws.text);
    assert_eq!(ws.body["tenant_id"], t.id);
    let seen = app
        .get(&t.caller, &format!("/api/v1/workspaces/{}", ws.id()))
        .await;
    assert_eq!(seen.status, 200);
    // Without the header, an admin acts in the resource's own tenant (see tests/api/tenancy.rs).
    let no_header = app
        .get(&app.admin(), &format!("/api/v1/workspaces/{}", ws.id()))
        .await;
    assert_eq!((no_header.status, no_header.id()), (200, ws.id()));
}
