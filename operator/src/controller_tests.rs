//! Reconcile error paths against a mocked API server (kube's tower-test pattern): each test
//! scripts the API server's answers and asserts the requests the reconciler makes.

use super::*;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use tower_test::mock::{Handle, pair};

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn platform_json(spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "oyl.dev/v1alpha1", "kind": "OylPlatform",
        "metadata": {"name": "acme", "namespace": "team-a", "uid": "u-1", "generation": 2},
        "spec": spec,
    })
}

fn platform(spec: serde_json::Value) -> Arc<OylPlatform> {
    Arc::new(serde_json::from_value(platform_json(spec)).expect("fixture"))
}

fn context() -> (Arc<Context>, ApiHandle) {
    let (service, handle) = pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    (Arc::new(Context::new(client, Metrics::new())), handle)
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn api_error(code: u16, message: &str) -> serde_json::Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": message, "reason": "Failure", "code": code})
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
    assert_eq!(degraded["observedGeneration"], 2);
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
        // The first observation fails; the best-effort status update observes again and fails
        // too, so no status is written; a Warning event is still attempted.
        for _ in 0..2 {
            expect(
                &mut api,
                Method::GET,
                "/api/v1/namespaces/team-a/secrets",
                respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    api_error(500, "etcd unavailable"),
                ),
            )
            .await;
        }
        expect(
            &mut api,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/team-a/events",
            respond(StatusCode::CREATED, serde_json::json!({})),
        )
        .await
    });
    let err = reconcile(p.clone(), ctx.clone())
        .await
        .expect_err("API errors fail the reconcile");
    assert_eq!(err.reason(), "KubernetesApiError");
    let event = server.await.unwrap();
    assert_eq!(event["reason"], "KubernetesApiError");
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
    let empty_list = || {
        respond(
            StatusCode::OK,
            serde_json::json!({"metadata": {}, "items": []}),
        )
    };
    let lists = [
        "/api/v1/namespaces/team-a/secrets",
        "/api/v1/namespaces/team-a/persistentvolumeclaims",
        "/api/v1/namespaces/team-a/services",
        "/apis/apps/v1/namespaces/team-a/deployments",
        "/apis/autoscaling/v2/namespaces/team-a/horizontalpodautoscalers",
        "/apis/batch/v1/namespaces/team-a/cronjobs",
        "/apis/networking.k8s.io/v1/namespaces/team-a/networkpolicies",
        "/apis/policy/v1/namespaces/team-a/poddisruptionbudgets",
        "/apis/batch/v1/namespaces/team-a/jobs",
    ];
    let server = tokio::spawn(async move {
        for path in lists {
            expect(&mut api, Method::GET, path, empty_list()).await;
        }
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
        // Error path: observe again, then write a Degraded status naming the failure.
        for path in lists {
            expect(&mut api, Method::GET, path, empty_list()).await;
        }
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
