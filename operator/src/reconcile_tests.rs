//! Reconcile error paths against a mocked API server (kube's tower-test pattern): each test
//! scripts the API server's answers and asserts the requests the reconciler makes.

use super::*;
use crate::metrics::Metrics;
use crate::test_support::platform_json;
use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use tower_test::mock::{Handle, pair};

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn platform(spec: serde_json::Value) -> Arc<OylPlatform> {
    Arc::new(serde_json::from_value(platform_json(spec)).expect("fixture"))
}

fn context() -> (Arc<Context>, ApiHandle) {
    let (service, handle) = pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    // Empty caches: the platform has no children yet.
    let (children, _writers) = crate::kinds::stores();
    (
        Arc::new(Context::new(client, Metrics::new(), children)),
        handle,
    )
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn api_error(code: u16, message: &str) -> serde_json::Value {
    let reason = if code == 404 { "NotFound" } else { "Failure" };
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": message, "reason": reason, "code": code})
}

/// Takes the next request, checks its method and path prefix, and returns its body as JSON.
async fn expect(
    handle: &mut ApiHandle,
    method: Method,
    path: &str,
    reply: Response<Body>,
) -> serde_json::Value {
    let (req, send) = handle.next_request().await.expect("a request");
    assert_eq!(req.method(), method, "method of {}", req.uri());
    assert!(
        req.uri().path().starts_with(path),
        "expected {path}, got {}",
        req.uri()
    );
    let bytes = req.into_body().collect_bytes().await.unwrap();
    send.send_response(reply);
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn an_invalid_spec_is_reported_in_status_and_an_event_and_not_retried() {
    let (ctx, mut api) = context();
    let p =
        platform(serde_json::json!({"api": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}));
    let server = tokio::spawn(async move {
        let status = expect(
            &mut api,
            Method::PATCH,
            "/apis/oyl.dev/v1alpha1/namespaces/team-a/oylplatforms/acme/status",
            respond(StatusCode::OK, platform_json(serde_json::json!({}))),
        )
        .await;
        let event = expect(
            &mut api,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/team-a/events",
            respond(StatusCode::CREATED, serde_json::json!({})),
        )
        .await;
        (status, event)
    });
    let action = reconcile(p, ctx.clone())
        .await
        .expect("an invalid spec is not an error to retry");
    assert_eq!(action, Action::await_change());
    let (status, event) = server.await.unwrap();
    let s = &status["status"];
    assert_eq!(s["phase"], "Degraded");
    let degraded = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap();
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "InvalidSpec");
    assert_eq!(degraded["observedGeneration"], 3);
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("spec.api.autoscaling.minReplicas")
    );
    assert_eq!(event["reason"], "InvalidSpec");
    assert_eq!(event["type"], "Warning");
}

#[tokio::test]
async fn an_unreachable_api_fails_the_reconcile_and_backs_off_exponentially() {
    let (ctx, mut api) = context();
    let p = platform(serde_json::json!({}));
    let server = tokio::spawn(async move {
        // The caches have no credentials Secret, so it is read from the API server, which
        // fails; the best-effort status names the failure and a Warning event is attempted.
        expect(
            &mut api,
            Method::GET,
            "/api/v1/namespaces/team-a/secrets/acme-credentials",
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                api_error(500, "etcd unavailable"),
            ),
        )
        .await;
        let status = expect(
            &mut api,
            Method::PATCH,
            "/apis/oyl.dev/v1alpha1/namespaces/team-a/oylplatforms/acme/status",
            respond(StatusCode::OK, platform_json(serde_json::json!({}))),
        )
        .await;
        let event = expect(
            &mut api,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/team-a/events",
            respond(StatusCode::CREATED, serde_json::json!({})),
        )
        .await;
        (status, event)
    });
    let err = reconcile(p.clone(), ctx.clone())
        .await
        .expect_err("API errors fail the reconcile");
    assert_eq!(err.reason(), "KubernetesApiError");
    let (status, event) = server.await.unwrap();
    assert_eq!(event["reason"], "KubernetesApiError");
    assert_eq!(status["status"]["phase"], "Degraded");
    let delays: Vec<_> = (0..4)
        .map(|_| error_policy(p.clone(), &err, ctx.clone()))
        .collect();
    assert_eq!(
        delays,
        [1, 2, 4, 8].map(|s| Action::requeue(Duration::from_secs(s)))
    );
    for _ in 0..20 {
        error_policy(p.clone(), &err, ctx.clone());
    }
    assert_eq!(
        error_policy(p.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(256)),
        "capped"
    );
    ctx.succeeded(&status::platform_ref(&p));
    assert_eq!(
        error_policy(p, &err, ctx),
        Action::requeue(Duration::from_secs(1)),
        "reset after success"
    );
}

#[tokio::test]
async fn a_rejected_apply_names_the_object_and_surfaces_in_status() {
    let (ctx, mut api) = context();
    let p = platform(serde_json::json!({}));
    let server = tokio::spawn(async move {
        // Not in the caches: the credentials Secret is looked up before new ones are made.
        expect(
            &mut api,
            Method::GET,
            "/api/v1/namespaces/team-a/secrets/acme-credentials",
            respond(StatusCode::NOT_FOUND, api_error(404, "not found")),
        )
        .await;
        // The credentials Secret goes first, and the API server refuses it.
        let applied = expect(
            &mut api,
            Method::PATCH,
            "/api/v1/namespaces/team-a/secrets/acme-credentials",
            respond(
                StatusCode::FORBIDDEN,
                api_error(403, "secrets is forbidden"),
            ),
        )
        .await;
        // Error path: a Degraded status naming the failure.
        let status = expect(
            &mut api,
            Method::PATCH,
            "/apis/oyl.dev/v1alpha1/namespaces/team-a/oylplatforms/acme/status",
            respond(StatusCode::OK, platform_json(serde_json::json!({}))),
        )
        .await;
        expect(
            &mut api,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/team-a/events",
            respond(StatusCode::CREATED, serde_json::json!({})),
        )
        .await;
        (applied, status)
    });
    let err = reconcile(p, ctx)
        .await
        .expect_err("a refused apply fails the reconcile");
    assert!(err.to_string().contains("Secret/acme-credentials"), "{err}");
    let (applied, status) = server.await.unwrap();
    assert_eq!(applied["kind"], "Secret");
    let key = &applied["data"]["SECRET_KEY"];
    assert!(key.is_string() && key != "", "a generated key is applied");
    let degraded = status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap()
        .clone();
    assert_eq!(degraded["reason"], "ApplyFailed");
    assert!(degraded["message"].as_str().unwrap().contains("forbidden"));
}
